//! Controlled vocabularies: accident types (GB 6441), injury severity, hazard
//! levels, activity kinds, target directions.
//!
//! Every vocabulary has one canonical code (lower-case ASCII, stored in the
//! canonical tables) and accepts Chinese names and English aliases on input.

/// Normalise a label for alias lookup: trim, lower-case, collapse separators.
pub(crate) fn normalise_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_sep = false;
    for ch in s.trim().chars() {
        if ch.is_whitespace() || ch == '-' || ch == '_' || ch == '/' {
            if !last_sep && !out.is_empty() {
                out.push('_');
            }
            last_sep = true;
        } else {
            out.extend(ch.to_lowercase());
            last_sep = false;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// One entry of a vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct Term {
    /// Canonical code stored in the tables.
    pub code: &'static str,
    /// Chinese name.
    pub zh: &'static str,
    /// English name.
    pub en: &'static str,
    /// Further accepted spellings.
    pub aliases: &'static [&'static str],
}

/// A named vocabulary (a list of [`Term`]s).
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary {
    /// Name used in messages and docs.
    pub name: &'static str,
    /// The terms in their documented order.
    pub terms: &'static [Term],
}

impl Vocabulary {
    /// Resolve any accepted spelling to the canonical code.
    pub fn resolve(&self, input: &str) -> Option<&'static str> {
        if let Some(t) = self.terms.iter().find(|t| t.code == input) {
            return Some(t.code);
        }
        let norm = normalise_label(input);
        if norm.is_empty() {
            return None;
        }
        self.index().get(norm.as_str()).copied()
    }

    /// Normalised spelling → code, built once per vocabulary.
    fn index(&self) -> &'static std::collections::HashMap<String, &'static str> {
        type Indexes = std::collections::HashMap<
            &'static str,
            &'static std::collections::HashMap<String, &'static str>,
        >;
        static INDEXES: std::sync::OnceLock<std::sync::Mutex<Indexes>> = std::sync::OnceLock::new();
        let mut all = INDEXES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.entry(self.name).or_insert_with(|| {
            let mut m = std::collections::HashMap::new();
            // Later terms never override earlier ones: the documented order wins.
            for t in self.terms.iter().rev() {
                m.insert(normalise_label(t.code), t.code);
                m.insert(t.zh.to_string(), t.code);
                m.insert(normalise_label(t.en), t.code);
                for a in t.aliases {
                    m.insert(normalise_label(a), t.code);
                }
            }
            Box::leak(Box::new(m))
        })
    }

    /// The canonical codes.
    pub fn codes(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.terms.iter().map(|t| t.code)
    }

    /// Look up the term of a canonical code.
    pub fn term(&self, code: &str) -> Option<&'static Term> {
        self.terms.iter().find(|t| t.code == code)
    }
}

macro_rules! term {
    ($code:literal, $zh:literal, $en:literal $(, $alias:literal)* $(,)?) => {
        Term { code: $code, zh: $zh, en: $en, aliases: &[$($alias),*] }
    };
}

/// The 20 accident types of GB 6441-1986 §5 (`category` of incidents).
/// The two-digit number of the standard is accepted as an alias.
pub const ACCIDENT_TYPES: Vocabulary = Vocabulary {
    name: "accident type (GB 6441)",
    terms: &[
        term!(
            "struck_by_object",
            "物体打击",
            "struck by object",
            "01",
            "struck by",
            "object strike"
        ),
        term!(
            "vehicle",
            "车辆伤害",
            "vehicle injury",
            "02",
            "vehicle accident",
            "traffic"
        ),
        term!(
            "machinery",
            "机械伤害",
            "machinery injury",
            "03",
            "machinery",
            "caught in machinery"
        ),
        term!(
            "lifting",
            "起重伤害",
            "lifting injury",
            "04",
            "crane",
            "hoisting"
        ),
        term!(
            "electric_shock",
            "触电",
            "electric shock",
            "05",
            "electrocution",
            "electrical"
        ),
        term!("drowning", "淹溺", "drowning", "06"),
        term!("burns", "灼烫", "burns", "07", "burn", "scald"),
        term!("fire", "火灾", "fire", "08"),
        term!(
            "fall_from_height",
            "高处坠落",
            "fall from height",
            "09",
            "fall",
            "fall to lower level"
        ),
        term!("collapse", "坍塌", "collapse", "10"),
        term!(
            "roof_fall",
            "冒顶片帮",
            "roof fall",
            "11",
            "roof and rib fall"
        ),
        term!("water_inrush", "透水", "water inrush", "12", "flooding"),
        term!("blasting", "放炮", "blasting", "13"),
        term!(
            "explosive_explosion",
            "火药爆炸",
            "explosive explosion",
            "14",
            "gunpowder explosion"
        ),
        term!(
            "gas_explosion",
            "瓦斯爆炸",
            "gas explosion",
            "15",
            "firedamp explosion"
        ),
        term!("boiler_explosion", "锅炉爆炸", "boiler explosion", "16"),
        term!(
            "vessel_explosion",
            "容器爆炸",
            "vessel explosion",
            "17",
            "pressure vessel explosion"
        ),
        term!(
            "other_explosion",
            "其它爆炸",
            "other explosion",
            "18",
            "其他爆炸"
        ),
        term!(
            "poisoning_asphyxia",
            "中毒和窒息",
            "poisoning and asphyxia",
            "19",
            "poisoning",
            "asphyxia",
            "中毒窒息"
        ),
        term!(
            "other",
            "其它伤害",
            "other injury",
            "20",
            "其他伤害",
            "other"
        ),
    ],
};

/// Injury severity of incidents, from least to most severe.
pub const SEVERITIES: Vocabulary = Vocabulary {
    name: "severity",
    terms: &[
        term!(
            "near_miss",
            "未遂事件",
            "near miss",
            "nearmiss",
            "no injury",
            "未遂"
        ),
        term!(
            "first_aid",
            "急救",
            "first aid",
            "first aid case",
            "急救事件"
        ),
        term!("minor", "轻伤", "minor injury", "minor", "lost time"),
        term!("serious", "重伤", "serious injury", "major injury"),
        term!("fatal", "死亡", "fatality", "fatal", "death"),
    ],
};

/// Hazard levels (一般 / 重大).
pub const HAZARD_LEVELS: Vocabulary = Vocabulary {
    name: "hazard level",
    terms: &[
        term!("general", "一般", "general", "一般隐患", "minor"),
        term!("major", "重大", "major", "重大隐患"),
    ],
};

/// Kinds of safety activities.
pub const ACTIVITY_KINDS: Vocabulary = Vocabulary {
    name: "activity kind",
    terms: &[
        term!(
            "inspection",
            "检查",
            "leader inspection",
            "领导带班检查",
            "patrol"
        ),
        term!("training", "培训", "training", "安全培训"),
        term!("drill", "演练", "emergency drill", "应急演练"),
        term!("suggestion", "建议", "safety suggestion", "合理化建议"),
        term!(
            "equipment_check",
            "设备检查",
            "emergency equipment check",
            "应急设备检查"
        ),
    ],
};

/// Directions of a target: the actual must stay at most / at least the target.
pub const TARGET_DIRECTIONS: Vocabulary = Vocabulary {
    name: "target direction",
    terms: &[
        term!(
            "at_most",
            "不高于",
            "at most",
            "max",
            "<=",
            "lower is better"
        ),
        term!(
            "at_least",
            "不低于",
            "at least",
            "min",
            ">=",
            "higher is better"
        ),
    ],
};

/// Kinds of camera-detected violations (other kinds are kept as given).
pub const VIOLATION_KINDS: Vocabulary = Vocabulary {
    name: "violation kind",
    terms: &[
        term!("no_helmet", "未戴安全帽", "no helmet", "helmet"),
        term!("no_harness", "未系安全带", "no harness", "harness"),
        term!("smoking", "吸烟", "smoking"),
        term!("intrusion", "闯入围栏", "fence intrusion", "intrusion"),
        term!("no_vest", "未穿反光衣", "no reflective vest"),
        term!("phone", "使用手机", "phone use"),
    ],
};

/// The codes the results carry that a reader sees named: risk levels and
/// where a level comes from, trends, target statuses, escalation steps and
/// alert levels, hot-spot classes, alert kinds, KPIs and KPI units. The
/// dashboard and the review report show these names (they are not read as
/// input).
pub const DISPLAY_TERMS: Vocabulary = Vocabulary {
    name: "display term",
    terms: &[
        term!("red", "重大风险", "Major"),
        term!("orange", "较大风险", "High"),
        term!("yellow", "一般风险", "Moderate"),
        term!("blue", "低风险", "Low"),
        term!(
            "static",
            "固有风险评估（静态）",
            "the fixed assessment (static)"
        ),
        term!(
            "dynamic",
            "当前证据（动态）",
            "the current evidence (dynamic)"
        ),
        term!("both", "静态与动态一致", "static and dynamic agree"),
        term!("cells", "按网格汇总", "the cells' roll-up"),
        term!("up", "上升", "Rising"),
        term!("down", "下降", "Falling"),
        term!("flat", "持平", "Steady"),
        term!("new", "新出现", "New"),
        term!("achieved", "已达成", "Achieved"),
        term!("on_track", "正常", "On track"),
        term!("at_risk", "有风险", "At risk"),
        term!("off_track", "偏离", "Off track"),
        term!("missed", "未达成", "Missed"),
        term!("no_data", "无数据", "No data"),
        term!("owner", "责任人", "Owner"),
        term!("supervisor", "主管督办", "Supervisor"),
        term!("leadership", "领导督办", "Leadership"),
        term!("reminder", "提醒", "Reminder"),
        term!("alarm", "报警", "Alarm"),
        term!("review", "复核", "Review"),
        term!("hot_99", "热点（99% 置信）", "Hot spot (99 %)"),
        term!("hot_95", "热点（95% 置信）", "Hot spot (95 %)"),
        term!("hot_90", "热点（90% 置信）", "Hot spot (90 %)"),
        term!("not_significant", "不显著", "Not significant"),
        term!("cold_90", "冷点（90% 置信）", "Cold spot (90 %)"),
        term!("cold_95", "冷点（95% 置信）", "Cold spot (95 %)"),
        term!("cold_99", "冷点（99% 置信）", "Cold spot (99 %)"),
        term!("island", "无相邻网格", "No neighbours"),
        term!("overdue_hazard", "逾期隐患", "Overdue hazard"),
        term!("repeat_violation", "连续违章", "Repeat violation"),
        term!("fence_intrusion", "闯入围栏", "Fence intrusion"),
        term!("sensor_alarm", "传感器报警", "Sensor alarm"),
        term!("low_points", "安全积分低", "Low safety points"),
        term!("trir", "可记录事件率 TRIR", "TRIR"),
        term!("ltifr", "损失工时伤害率 LTIFR", "LTIFR"),
        term!("fatalities", "死亡人数", "Fatalities"),
        term!("rectification_rate", "隐患整改率", "Rectification rate"),
        term!(
            "rectification_cycle_hours",
            "整改周期",
            "Rectification cycle"
        ),
        term!("training_coverage", "培训覆盖率", "Training coverage"),
        term!("drill_response_minutes", "演练响应时间", "Drill response"),
        term!(
            "leader_inspections_per_month",
            "领导带班检查",
            "Leader inspections"
        ),
        term!("suggestions_per_month", "合理化建议", "Suggestions"),
        term!(
            "equipment_readiness",
            "应急设备完好率",
            "Equipment readiness"
        ),
        term!("per 200,000 h", "每 20 万工时", "per 200,000 h"),
        term!("h", "小时", "h"),
        term!("min", "分钟", "min"),
        term!("per leader per month", "次/人·月", "per leader per month"),
        term!("per month", "条/月", "per month"),
        term!("group", "集团", "Group"),
        term!("consecutive", "连续热点", "Consecutive"),
        term!("intensifying", "加剧热点", "Intensifying"),
        term!("persistent", "持续热点", "Persistent"),
        term!("diminishing", "减弱热点", "Diminishing"),
        term!("sporadic", "零星热点", "Sporadic"),
        term!("oscillating", "振荡热点", "Oscillating"),
        term!("historical", "历史热点", "Historical"),
        term!("no_pattern", "无模式", "No pattern"),
        term!("intercept", "截距", "Intercept"),
        term!(
            "lag_near_misses",
            "上期未遂事件",
            "Near misses, period before"
        ),
        term!(
            "lag_hazards",
            "上期隐患上报",
            "Hazards reported, period before"
        ),
        term!(
            "lag_overdue_hazards",
            "上期末逾期隐患",
            "Hazards overdue, end of period before"
        ),
        term!("lag_violations", "上期违章", "Violations, period before"),
        term!(
            "cell_mean_near_misses",
            "该网格通常的未遂事件数",
            "The cell's usual near misses"
        ),
        term!(
            "cell_mean_hazards",
            "该网格通常的隐患上报数",
            "The cell's usual hazard reports"
        ),
        term!(
            "cell_mean_overdue_hazards",
            "该网格通常的逾期隐患数",
            "The cell's usual overdue hazards"
        ),
        term!(
            "cell_mean_violations",
            "该网格通常的违章数",
            "The cell's usual violations"
        ),
        term!("trend", "长期趋势", "Trend"),
        term!("season_sin", "季节（正弦）", "Season (sine)"),
        term!("season_cos", "季节（余弦）", "Season (cosine)"),
        term!("cell", "网格自身水平", "The cell's own level"),
        term!("model", "模型", "Model"),
        term!("last_period", "上期计数", "Last period's count"),
        term!("long_run_mean", "长期均值", "Long-run mean"),
        term!("risk_score", "风险评分", "Risk score"),
    ],
};

/// The language of the words a chart or a document shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English (the charts' default).
    #[default]
    En,
    /// Chinese.
    Zh,
}

impl Lang {
    /// The language of `zh` or `en`; `None` gives `default`.
    pub fn parse(value: Option<&str>, default: Lang) -> crate::util::error::Result<Lang> {
        match value {
            None => Ok(default),
            Some("zh") => Ok(Lang::Zh),
            Some("en") => Ok(Lang::En),
            Some(other) => Err(crate::util::error::Error::option(
                "lang",
                format!("`{other}` is not zh or en"),
            )),
        }
    }

    /// The code: `zh` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The text of this language.
    pub fn w<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// The name of a vocabulary code in this language (display terms
    /// first, then the tables' vocabularies); an unknown code as it is.
    pub fn term(self, code: &str) -> String {
        // The display terms first (`owner` the escalation step, not the
        // role).
        [
            DISPLAY_TERMS,
            HAZARD_LEVELS,
            VIOLATION_KINDS,
            SEVERITIES,
            ACCIDENT_TYPES,
            ACTIVITY_KINDS,
        ]
        .iter()
        .find_map(|v| v.term(code))
        .map_or_else(|| code.to_string(), |t| self.w(t.zh, t.en).to_string())
    }
}

/// Severity rank (0 = near miss … 4 = fatal) of a canonical severity code.
pub fn severity_rank(code: &str) -> Option<u8> {
    SEVERITIES
        .terms
        .iter()
        .position(|t| t.code == code)
        .and_then(|p| u8::try_from(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accident_types_resolve_from_every_spelling() {
        assert_eq!(ACCIDENT_TYPES.terms.len(), 20);
        assert_eq!(ACCIDENT_TYPES.resolve("高处坠落"), Some("fall_from_height"));
        assert_eq!(
            ACCIDENT_TYPES.resolve("Fall From Height"),
            Some("fall_from_height")
        );
        assert_eq!(ACCIDENT_TYPES.resolve("09"), Some("fall_from_height"));
        assert_eq!(ACCIDENT_TYPES.resolve("其他伤害"), Some("other"));
        assert_eq!(
            ACCIDENT_TYPES.resolve("中毒和窒息"),
            Some("poisoning_asphyxia")
        );
        assert_eq!(ACCIDENT_TYPES.resolve("volcano"), None);
        assert_eq!(SEVERITIES.resolve("Near-Miss"), Some("near_miss"));
        assert_eq!(severity_rank("fatal"), Some(4));
    }
}
