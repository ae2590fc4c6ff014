//! The extension codecs of safetyscope's plan nodes: the ingest's table
//! (in the logical plans the job runner sends the scheduler) and its node
//! (in the tasks the scheduler sends the executors). Every other node goes
//! to Ballista's own codecs.
//!
//! The table travels with all its work; the node with what its tasks
//! share, its input (an in-memory scan, one partition per task, each
//! holding its task's description) going through Ballista's codec, which
//! restricts it to each task's partitions.
//!
//! An ingest's bytes start with [`TAG`], which neither Ballista's nor
//! DataFusion's encodings begin with (their protobuf messages start with a
//! field tag byte below 0x80 for the fields they use, and this tag is not
//! valid protobuf: field number 0).

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use safetyscope_core::Error;
use safetyscope_core::ingest_plan::{IngestExec, IngestTable, IngestTables, IngestWork};

/// The first bytes of an encoded ingest (`0x00` is field number 0, which
/// protobuf does not allow, then a name).
pub const TAG: &[u8] = b"\x00safetyscope-ingest\x00";

fn encode(work: &[u8], projection: Option<&Vec<usize>>, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(TAG);
    let projection = serde_json::to_vec(&projection)
        .map_err(|e| DataFusionError::Internal(format!("ingest projection: {e}")))?;
    buf.extend_from_slice(&(projection.len() as u64).to_le_bytes());
    buf.extend_from_slice(&projection);
    buf.extend_from_slice(work);
    Ok(())
}

/// A node's projection and the bytes of its work.
type Decoded<'a> = (Option<Vec<usize>>, &'a [u8]);

/// The projection and the rest of bytes from [`encode`]; `None` for bytes
/// of another codec.
fn decode(buf: &[u8]) -> Option<Result<Decoded<'_>>> {
    let rest = buf.strip_prefix(TAG)?;
    let bad = |what: &str| DataFusionError::Internal(format!("a damaged ingest plan: {what}"));
    Some((|| {
        let (len, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("no projection"))?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| bad("length"))?;
        if rest.len() < len {
            return Err(bad("cut short"));
        }
        let (projection, rest) = rest.split_at(len);
        let projection: Option<Vec<usize>> =
            serde_json::from_slice(projection).map_err(|e| bad(&e.to_string()))?;
        Ok((projection, rest))
    })())
}

/// Ballista's logical codec, and the ingest's table.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match decode(buf) {
            Some(decoded) => {
                let work = IngestWork::from_bytes(decoded?.1).map_err(Error::into_plan)?;
                Ok(Arc::new(IngestTable::new(work)))
            }
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<IngestTable>() {
            Some(t) => encode(&t.work().to_bytes().map_err(Error::into_plan)?, None, buf),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// Ballista's physical codec, and the ingest's node.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match decode(buf) {
            Some(decoded) => {
                let (projection, tables) = decoded?;
                let tables = IngestTables::from_bytes(tables).map_err(Error::into_plan)?;
                let [input] = inputs else {
                    return Err(DataFusionError::Internal(format!(
                        "an ingest node with {} inputs",
                        inputs.len()
                    )));
                };
                Ok(Arc::new(IngestExec::new(
                    Arc::new(tables),
                    input.clone(),
                    projection,
                )?))
            }
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        match node.downcast_ref::<IngestExec>() {
            Some(exec) => encode(
                &exec.tables().to_bytes().map_err(Error::into_plan)?,
                exec.projection(),
                buf,
            ),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_bytes_are_an_error_and_other_bytes_are_not_ours() {
        assert!(decode(b"\x0a\x03abc").is_none());
        let mut cut = TAG.to_vec();
        cut.extend_from_slice(&[5, 0, 0]);
        assert!(matches!(decode(&cut), Some(Err(_))));
        let mut long = TAG.to_vec();
        long.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode(&long), Some(Err(_))));
    }
}
