//! The inputs of a dataset: a directory of canonical files, a mapping file
//! or a URL resolved into the sources of each table.

use std::collections::BTreeMap;

#[cfg(feature = "native")]
use crate::io::mapping::Mapping;
use crate::io::mapping::TableMapping;
use crate::io::source::Source;
use crate::model::schema::TableKind;
use crate::util::error::Error;
use crate::util::error::Result;

/// What to do when a table cannot be loaded at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnTableError {
    /// Return the error (analyses).
    #[default]
    Fail,
    /// Record it in the report and register an empty table (validation).
    Report,
}

/// Run `f` on every table of `inputs` but the site plan, in parallel where
/// threads exist; results in table order.
pub(crate) fn for_each_table<T: Send>(
    inputs: &BTreeMap<TableKind, TableInput>,
    f: &(dyn Fn(TableKind, &TableInput) -> Result<T> + Sync),
) -> Vec<(TableKind, Result<T>)> {
    let rest: Vec<(TableKind, &TableInput)> = TableKind::ALL
        .into_iter()
        .filter(|k| *k != TableKind::Cells)
        .filter_map(|k| inputs.get(&k).map(|i| (k, i)))
        .collect();
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::thread::scope(|scope| {
            let handles: Vec<_> = rest
                .iter()
                .map(|(k, input)| (*k, scope.spawn(move || f(*k, input))))
                .collect();
            handles
                .into_iter()
                .map(|(k, h)| {
                    (
                        k,
                        h.join().unwrap_or_else(|payload| {
                            // A reader library gave up on a damaged file.
                            let why = payload
                                .downcast_ref::<String>()
                                .map(String::as_str)
                                .or_else(|| payload.downcast_ref::<&str>().copied())
                                .unwrap_or("no message");
                            Err(Error::data(
                                k.name(),
                                format!("a source could not be decoded (damaged or unsupported file): {why}"),
                            ))
                        }),
                    )
                })
                .collect()
        })
    }
    #[cfg(target_arch = "wasm32")]
    {
        rest.into_iter()
            .map(|(k, input)| (k, f(k, input)))
            .collect()
    }
}

/// One table to load: its mapping (if any) and its sources.
#[derive(Debug, Clone, Default)]
pub struct TableInput {
    /// Column mapping and read options.
    pub mapping: Option<TableMapping>,
    /// Files, bytes or batches.
    pub sources: Vec<Source>,
    /// Set when the sources could not even be found.
    pub error: Option<std::sync::Arc<Error>>,
}

/// Apply a mapping's plans (grids, polygon layers) to the inputs: the site
/// plan generated from them, and the plans handed to every table whose
/// coordinates they bin.
pub(crate) fn apply_plans(
    mapping: Option<&crate::io::mapping::Mapping>,
    inputs: &mut BTreeMap<TableKind, TableInput>,
) -> Result<()> {
    let Some(m) = mapping.filter(|m| !(m.grid.is_empty() && m.polygons.is_empty())) else {
        return Ok(());
    };
    let plans: Vec<std::sync::Arc<crate::io::plan::Plan>> =
        crate::io::plan_files::plans(&m.grid, &m.polygons, &m.base_dir, "mapping")?
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
    let cells = plans
        .iter()
        .map(|p| p.cells())
        .collect::<Result<Vec<_>>>()?;
    for (kind, input) in inputs.iter_mut() {
        if crate::io::plan::binned(*kind) {
            input.mapping.get_or_insert_with(Default::default).plans = plans.clone();
        }
    }
    inputs.insert(
        TableKind::Cells,
        TableInput {
            mapping: None,
            sources: vec![crate::io::source::Source {
                label: match (m.grid.is_empty(), m.polygons.is_empty()) {
                    (false, true) => "[[grid]]".into(),
                    (true, false) => "[[polygons]]".into(),
                    _ => "[[grid]] / [[polygons]]".into(),
                },
                data: crate::io::source::SourceData::Batches(cells),
                format: crate::io::format::Format::Arrow,
                partitions: vec![],
            }],
            error: None,
        },
    );
    Ok(())
}

/// The mapping and the table inputs of a dataset path: a mapping file
/// (`.toml`), a directory with a `dataset.toml`, or a directory of canonical
/// files named after the tables.
#[cfg(feature = "native")]
pub(crate) fn resolve_inputs(
    path: &std::path::Path,
    on_error: OnTableError,
) -> Result<(Option<Mapping>, BTreeMap<TableKind, TableInput>)> {
    let url = crate::io::remote::url_of(path);
    let (mapping, base) = if let Some(u) = url {
        if u.ends_with(".toml") {
            let base = u.rsplit_once('/').map_or(u, |(b, _)| b);
            (
                Some(Mapping::from_toml(
                    &crate::io::remote::read_text(u)?,
                    base,
                    u,
                )?),
                std::path::PathBuf::from(base),
            )
        } else {
            let toml = format!("{}/dataset.toml", u.trim_end_matches('/'));
            let mapping = match crate::io::remote::exists(&toml)? {
                true => Some(Mapping::from_toml(
                    &crate::io::remote::read_text(&toml)?,
                    u,
                    &toml,
                )?),
                false => None,
            };
            (mapping, path.to_path_buf())
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
        (
            Some(Mapping::from_file(path)?),
            // `mapping.toml` in the current directory has an empty parent.
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(
                    || std::path::PathBuf::from("."),
                    std::path::Path::to_path_buf,
                ),
        )
    } else if path.is_dir() && path.join("dataset.toml").is_file() {
        (
            Some(Mapping::from_file(&path.join("dataset.toml"))?),
            path.to_path_buf(),
        )
    } else if path.is_dir() {
        (None, path.to_path_buf())
    } else if !path.exists() {
        return Err(Error::NotFound(path.to_path_buf()));
    } else {
        return Err(Error::option(
            "path",
            format!(
                "{} is neither a directory nor a .toml mapping file",
                path.display()
            ),
        ));
    };
    let mut inputs = BTreeMap::new();
    match &mapping {
        Some(m) => {
            for (name, t) in &m.tables {
                let kind = TableKind::from_name(name).expect("checked when parsing");
                let Some(p) = &t.path else {
                    return Err(Error::mapping(
                        Some(format!("[tables.{name}]")),
                        "`path` is required when opening from files",
                    ));
                };
                let what = format!("[tables.{name}] path");
                crate::io::confine::check_location(&base, p, &what)?;
                let full = crate::io::remote::join_location(&base, p);
                let fmt = t
                    .format
                    .as_deref()
                    .map(crate::io::format::Format::parse)
                    .transpose()?;
                let found = crate::io::source::discover(&full, fmt).and_then(|s| {
                    let files: Vec<std::path::PathBuf> = s
                        .iter()
                        .filter_map(|s| match &s.data {
                            crate::io::source::SourceData::Path(p) => Some(p.clone()),
                            _ => None,
                        })
                        .collect();
                    crate::io::confine::check_found(&base, &files, &what)?;
                    Ok(s)
                });
                let sources = match found {
                    Ok(s) => s,
                    Err(e) if on_error == OnTableError::Report => {
                        inputs.insert(
                            kind,
                            TableInput {
                                mapping: Some(t.clone()),
                                sources: vec![],
                                error: Some(std::sync::Arc::new(e)),
                            },
                        );
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                inputs.insert(
                    kind,
                    TableInput {
                        mapping: Some(t.clone()),
                        sources,
                        error: None,
                    },
                );
            }
        }
        None if url.is_some() => {
            for (kind, table_url) in crate::io::remote::canonical_tables(url.unwrap_or_default())? {
                inputs.insert(
                    kind,
                    TableInput {
                        mapping: None,
                        sources: crate::io::source::discover_url(&table_url, None)?,
                        error: None,
                    },
                );
            }
        }
        None => {
            for kind in TableKind::ALL {
                let mut found = None;
                for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
                    let p = entry.map_err(|e| Error::io(path, e))?.path();
                    let stem = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let is_dir_match =
                        p.is_dir() && p.file_name().is_some_and(|n| n == kind.name());
                    let is_file_match = p.is_file()
                        && stem == kind.name()
                        && crate::io::format::Format::from_name(&p.to_string_lossy()).is_some();
                    if is_dir_match || is_file_match {
                        found = Some(p);
                        break;
                    }
                }
                if let Some(p) = found {
                    inputs.insert(
                        kind,
                        TableInput {
                            mapping: None,
                            sources: crate::io::source::discover(&p, None)?,
                            error: None,
                        },
                    );
                }
            }
        }
    }
    apply_plans(mapping.as_ref(), &mut inputs)?;
    if mapping.is_none() && inputs.is_empty() {
        return Err(Error::data(
            path.display().to_string(),
            format!(
                "no canonical table files found (expected e.g. incidents.parquet; tables: {})",
                TableKind::ALL.map(TableKind::name).join(", ")
            ),
        ));
    }
    Ok((mapping, inputs))
}
