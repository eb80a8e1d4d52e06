//! The site's languages (`NEWSDESK_LANGUAGES`) and the words of its pages and feeds in
//! each.
//!
//! The words live in one label file per language, `templates/web/labels.LANG.json`
//! (built into the binary), each with every key (a test says so). A language is looked
//! up by its primary subtag, so `zh-Hans` reads the `zh` file; a language without a file
//! reads English, and the settings refuse a site language without one, since its pages
//! would claim a language their words are not in. Dates are written as each language
//! writes them (`9 November 2023`, `2023年11月9日`), with the patterns in the same files.
//!
//! An operator may override a built-in language's file (`NEWSDESK_TEMPLATES_DIR/web/
//! labels.LANG.json`, checked by [`crate::templates::overrides`]): pages and feeds take
//! their words from the templates in use ([`crate::templates::Templates::page_words`]),
//! never from [`words`], which reads the built-in files only.
//!
//! [`SiteLanguages::negotiate`] picks the language of `/` from `Accept-Language`.

use crate::domain::{Language, language_matches, primary_language};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::sync::OnceLock;

/// The label files, by primary language subtag; English first, the fallback. A new
/// language is a new file here (and in the templates' catalog and the settings' help).
pub(crate) const LABELS: &[(&str, &str)] = &[
    ("en", include_str!("../templates/web/labels.en.json")),
    ("zh", include_str!("../templates/web/labels.zh.json")),
];

/// The words of one language, by key. Serialised as a map for the templates
/// (`{{labels.home}}`).
#[derive(Debug, Clone)]
pub struct Words {
    language: String,
    map: BTreeMap<String, String>,
}

impl Serialize for Words {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(s)
    }
}

/// The words of every language the pages and feeds speak: the built-in label files, or
/// those with an operator's overrides (`NEWSDESK_TEMPLATES_DIR/web/labels.LANG.json`,
/// held by [`crate::templates::Templates::page_words`]). English first.
#[derive(Debug, Clone)]
pub struct PageWords(Vec<Words>);

impl PageWords {
    /// The built-in words, parsed once.
    pub fn builtin() -> &'static PageWords {
        static PARSED: OnceLock<PageWords> = OnceLock::new();
        PARSED.get_or_init(|| {
            PageWords(
                LABELS
                    .iter()
                    .map(|(language, json)| Words {
                        language: (*language).to_owned(),
                        map: serde_json::from_str(json)
                            .expect("the label files are JSON objects of strings"),
                    })
                    .collect(),
            )
        })
    }

    /// The words for `language` (by its primary subtag), or the English ones.
    pub fn get(&self, language: &str) -> &Words {
        self.0
            .iter()
            .find(|w| w.language.eq_ignore_ascii_case(primary_language(language)))
            .unwrap_or(&self.0[0])
    }

    /// A language's name in its own words ("English", "中文"), for a language switch.
    pub fn endonym(&self, tag: &str) -> String {
        self.get(tag).language_name(tag)
    }

    /// Puts `map` in the place of the words of `language` (one with a built-in file;
    /// the overrides' check has made sure `map` has every key, each a string).
    pub(crate) fn replace(&mut self, language: &str, map: BTreeMap<String, String>) {
        match self.0.iter_mut().find(|w| w.language == language) {
            Some(w) => w.map = map,
            // A language an operator added (`web/labels.fr.json`).
            None => self.0.push(Words {
                language: language.to_owned(),
                map,
            }),
        }
    }

    /// Whether there are words of `language` (by its primary subtag), not English's
    /// in their place.
    pub fn has(&self, language: &str) -> bool {
        self.0
            .iter()
            .any(|w| w.language.eq_ignore_ascii_case(primary_language(language)))
    }
}

/// The BUILT-IN words for `language` (by its primary subtag), or the English ones. Pages
/// and feeds take theirs from the templates in use
/// ([`crate::templates::Templates::page_words`]), which an override may change.
pub fn words(language: &str) -> &'static Words {
    PageWords::builtin().get(language)
}

/// A time zone as a reader of `language` names it: in Chinese, "北京时间" for
/// `Asia/Shanghai` and "柏林时间" for `Europe/Berlin` (by the zone's city, as Chinese
/// writes the time of a place), "Asia/Kathmandu时间" for a zone without a Chinese name
/// here; in other languages the zone's IANA name.
pub fn zone_name(zone: &str, language: &str) -> String {
    if primary_language(language).eq_ignore_ascii_case("zh") {
        match ZONES_ZH.binary_search_by_key(&zone, |(z, _)| z) {
            Ok(at) => format!("{}时间", ZONES_ZH[at].1),
            Err(_) if zone == "UTC" || zone == "Etc/UTC" => "协调世界时".to_owned(),
            Err(_) => format!("{zone}时间"),
        }
    } else {
        zone.to_owned()
    }
}

/// IANA zone → the Chinese name of its place (CLDR's exemplar cities; China's zones
/// are 北京 time), sorted by zone.
const ZONES_ZH: &[(&str, &str)] = &[
    ("Africa/Cairo", "开罗"),
    ("Africa/Casablanca", "卡萨布兰卡"),
    ("Africa/Johannesburg", "约翰内斯堡"),
    ("Africa/Lagos", "拉各斯"),
    ("Africa/Nairobi", "内罗毕"),
    ("America/Argentina/Buenos_Aires", "布宜诺斯艾利斯"),
    ("America/Bogota", "波哥大"),
    ("America/Chicago", "芝加哥"),
    ("America/Denver", "丹佛"),
    ("America/Lima", "利马"),
    ("America/Los_Angeles", "洛杉矶"),
    ("America/Mexico_City", "墨西哥城"),
    ("America/New_York", "纽约"),
    ("America/Santiago", "圣地亚哥"),
    ("America/Sao_Paulo", "圣保罗"),
    ("America/Toronto", "多伦多"),
    ("America/Vancouver", "温哥华"),
    ("Asia/Almaty", "阿拉木图"),
    ("Asia/Bangkok", "曼谷"),
    ("Asia/Chongqing", "北京"),
    ("Asia/Dhaka", "达卡"),
    ("Asia/Dubai", "迪拜"),
    ("Asia/Harbin", "北京"),
    ("Asia/Ho_Chi_Minh", "胡志明市"),
    ("Asia/Hong_Kong", "香港"),
    ("Asia/Jakarta", "雅加达"),
    ("Asia/Jerusalem", "耶路撒冷"),
    ("Asia/Karachi", "卡拉奇"),
    ("Asia/Kathmandu", "加德满都"),
    ("Asia/Kolkata", "加尔各答"),
    ("Asia/Kuala_Lumpur", "吉隆坡"),
    ("Asia/Macau", "澳门"),
    ("Asia/Manila", "马尼拉"),
    ("Asia/Riyadh", "利雅得"),
    ("Asia/Seoul", "首尔"),
    ("Asia/Shanghai", "北京"),
    ("Asia/Singapore", "新加坡"),
    ("Asia/Taipei", "台北"),
    ("Asia/Tashkent", "塔什干"),
    ("Asia/Tehran", "德黑兰"),
    ("Asia/Tokyo", "东京"),
    ("Asia/Urumqi", "乌鲁木齐"),
    ("Atlantic/Reykjavik", "雷克雅未克"),
    ("Australia/Brisbane", "布里斯班"),
    ("Australia/Melbourne", "墨尔本"),
    ("Australia/Perth", "珀斯"),
    ("Australia/Sydney", "悉尼"),
    ("Europe/Amsterdam", "阿姆斯特丹"),
    ("Europe/Athens", "雅典"),
    ("Europe/Berlin", "柏林"),
    ("Europe/Brussels", "布鲁塞尔"),
    ("Europe/Dublin", "都柏林"),
    ("Europe/Helsinki", "赫尔辛基"),
    ("Europe/Istanbul", "伊斯坦布尔"),
    ("Europe/Kyiv", "基辅"),
    ("Europe/Lisbon", "里斯本"),
    ("Europe/London", "伦敦"),
    ("Europe/Madrid", "马德里"),
    ("Europe/Moscow", "莫斯科"),
    ("Europe/Paris", "巴黎"),
    ("Europe/Prague", "布拉格"),
    ("Europe/Rome", "罗马"),
    ("Europe/Stockholm", "斯德哥尔摩"),
    ("Europe/Vienna", "维也纳"),
    ("Europe/Warsaw", "华沙"),
    ("Europe/Zurich", "苏黎世"),
    ("Pacific/Auckland", "奥克兰"),
    ("Pacific/Honolulu", "檀香山"),
    ("Pacific/Kiritimati", "基里蒂马蒂"),
];

/// Whether there is a label file for `language` (by its primary subtag).
pub fn has_words(language: &str) -> bool {
    LABELS
        .iter()
        .any(|(l, _)| l.eq_ignore_ascii_case(primary_language(language)))
}

/// Formats `t` with a chrono pattern from a label file; a pattern chrono cannot read
/// gives the RFC 3339 form rather than a panic (the label test checks every pattern).
fn format_time<Tz: TimeZone>(t: &DateTime<Tz>, pattern: &str) -> String
where
    Tz::Offset: Display,
{
    let mut out = String::new();
    match write!(out, "{}", t.format(pattern)) {
        Ok(()) => out,
        Err(_) => t.to_rfc3339(),
    }
}

impl Words {
    /// The primary subtag these words are in (`en`, `zh`).
    pub fn language(&self) -> &str {
        &self.language
    }

    /// The words for `key`; the key itself when missing (never, for the shipped files).
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.map.get(key).map_or(key, String::as_str)
    }

    /// The words for `key` with each `{name}` replaced by its value.
    pub fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.get(key).to_owned();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// A language's name in these words ("Chinese", "中文"); the tag itself for a
    /// language without a name here.
    pub fn language_name(&self, tag: &str) -> String {
        let key = format!("language_{}", primary_language(tag).to_ascii_lowercase());
        self.map
            .get(&key)
            .cloned()
            .unwrap_or_else(|| tag.to_owned())
    }

    /// A day as this language writes it: "9 November 2023", "2023年11月9日".
    pub fn date<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> String
    where
        Tz::Offset: Display,
    {
        format_time(t, self.get("date"))
    }

    /// A pattern with `{weekday}` replaced by the day's short name, then formatted.
    fn with_weekday<Tz: TimeZone>(&self, t: &DateTime<Tz>, key: &str) -> String
    where
        Tz::Offset: Display,
    {
        let day = t.weekday().num_days_from_monday() as usize;
        let weekday = self
            .get("weekdays")
            .split_whitespace()
            .nth(day)
            .unwrap_or("");
        format_time(t, &self.get(key).replace("{weekday}", weekday))
    }

    /// When an event is, in its own time zone: "Thu 9 November 2023, 14:00 – 17:30 CST
    /// (UTC+08:00)", "2023年11月9日（周四）14:00 – 17:30（北京时间，UTC+08:00）" (`{zone}`
    /// in `event_zone` is the zone's name in the language, [`zone_name`]).
    pub fn event_when(
        &self,
        starts_at: DateTime<Utc>,
        ends_at: Option<DateTime<Utc>>,
        tz: chrono_tz::Tz,
    ) -> String {
        let start = starts_at.with_timezone(&tz);
        let mut s = self.with_weekday(&start, "event_start");
        if let Some(end) = ends_at {
            let end = end.with_timezone(&tz);
            if end.date_naive() == start.date_naive() {
                s.push_str(&format_time(&end, self.get("event_end_same_day")));
            } else {
                s.push_str(&self.with_weekday(&end, "event_end_other_day"));
            }
        }
        // `{zone}`: the zone as a reader of the language names it (北京时间).
        let zone = self
            .get("event_zone")
            .replace("{zone}", &zone_name(tz.name(), &self.language));
        s.push_str(&format_time(&start, &zone));
        s
    }
}

/// The languages the site is read in (`NEWSDESK_LANGUAGES`), the default first: every
/// page exists under `/{tag}/` for each, and feeds take `?lang={tag}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteLanguages(Vec<Language>);

impl Default for SiteLanguages {
    fn default() -> Self {
        Self::parse("en,zh").expect("the default languages are valid")
    }
}

impl SiteLanguages {
    /// A comma-separated list of language tags with a built-in label file each, none
    /// twice.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::parse_with(s, None)
    }

    /// As [`SiteLanguages::parse`], a language also read when `templates_dir` has its
    /// page labels (`web/labels.LANG.json`, LANG its primary subtag): an operator adds a
    /// language without a rebuild. The file is checked as every override is, at start.
    pub fn parse_with(s: &str, templates_dir: Option<&std::path::Path>) -> Result<Self, String> {
        let mut languages: Vec<Language> = Vec::new();
        for part in s.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(format!(
                    "must be language tags separated by commas, such as \"en,zh\" (got {s:?})"
                ));
            }
            let language = Language::parse(part)?;
            let primary = primary_language(language.as_str()).to_ascii_lowercase();
            let own_file = templates_dir
                .map(|d| d.join("web").join(format!("labels.{primary}.json")))
                .filter(|f| f.is_file());
            if !has_words(language.as_str()) && own_file.is_none() {
                let known: Vec<&str> = LABELS.iter().map(|(l, _)| *l).collect();
                return Err(format!(
                    "{part:?} has no page labels (built in: {}; another language needs \
                     web/labels.{primary}.json in NEWSDESK_TEMPLATES_DIR, with every key of \
                     the English one)",
                    known.join(", ")
                ));
            }
            if languages
                .iter()
                .any(|l| l.as_str().eq_ignore_ascii_case(language.as_str()))
            {
                return Err(format!("names {part:?} twice"));
            }
            languages.push(language);
        }
        Ok(Self(languages))
    }

    /// The site's default language: the first.
    pub fn default_language(&self) -> &Language {
        &self.0[0]
    }

    pub fn all(&self) -> &[Language] {
        &self.0
    }

    /// The site language written exactly so (ignoring case, as BCP 47 does).
    pub fn find(&self, tag: &str) -> Option<&Language> {
        self.0.iter().find(|l| l.as_str().eq_ignore_ascii_case(tag))
    }

    /// The site language whose readers read content in `tag`: the same tag, else one of
    /// the same language (`zh` for `zh-Hans`).
    pub fn for_content(&self, tag: &str) -> Option<&Language> {
        self.find(tag)
            .or_else(|| self.0.iter().find(|l| language_matches(l.as_str(), tag)))
    }

    /// The site language a range of `Accept-Language` asks for (RFC 4647 lookup): the
    /// same tag; else the range cut from the end (`zh-Hant-TW`, `zh-Hant`, `zh`); else a
    /// site language of the same primary language (`zh-Hans` for `zh` or `zh-CN`).
    fn lookup(&self, range: &str) -> Option<&Language> {
        let mut cut = range;
        loop {
            if let Some(found) = self.find(cut) {
                return Some(found);
            }
            match cut.rsplit_once('-') {
                Some((shorter, _)) => cut = shorter,
                None => break,
            }
        }
        self.0
            .iter()
            .find(|l| primary_language(l.as_str()).eq_ignore_ascii_case(primary_language(range)))
    }

    /// The site language a well-formed tag spelt otherwise names (`ZH`, `zh-CN`,
    /// `en-GB`), by [`Self::lookup`]: where an address with it (`/ZH/…`, `?lang=zh-CN`)
    /// is sent on to. `None` for a tag spelt as configured, a malformed one, or one of
    /// no site language.
    pub fn respelt(&self, tag: &str) -> Option<&Language> {
        Language::parse(tag).ok()?;
        self.lookup(tag).filter(|l| l.as_str() != tag)
    }

    /// The language for a reader with this `Accept-Language` (RFC 9110 12.5.4): the
    /// ranges by falling quality (ties in their order), the first that names a site
    /// language wins; `*` stands for the site languages not refused (`;q=0`); none, or
    /// no header: the default language.
    pub fn negotiate(&self, accept_language: Option<&str>) -> &Language {
        let Some(header) = accept_language else {
            return self.default_language();
        };
        let mut ranges: Vec<(f32, &str)> = header
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let range = pieces.next()?.trim();
                if range.is_empty() {
                    return None;
                }
                let mut q = 1.0;
                for p in pieces {
                    let p = p.trim();
                    if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                        q = v
                            .trim()
                            .parse::<f32>()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q))?;
                    }
                }
                Some((q, range))
            })
            .collect();
        // A stable sort keeps the header's order among equal qualities.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        let refused: Vec<&Language> = ranges
            .iter()
            .filter(|(q, r)| *q == 0.0 && *r != "*")
            .filter_map(|(_, r)| self.find(r))
            .collect();
        for (q, range) in &ranges {
            if *q == 0.0 {
                break;
            }
            if *range == "*" {
                if let Some(l) = self.0.iter().find(|l| !refused.contains(l)) {
                    return l;
                }
                continue;
            }
            if let Some(found) = self.lookup(range)
                && !refused.contains(&found)
            {
                return found;
            }
        }
        self.default_language()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zones_are_named_in_chinese_by_their_place() {
        assert!(ZONES_ZH.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        for (zone, _) in ZONES_ZH {
            assert!(zone.parse::<chrono_tz::Tz>().is_ok(), "{zone}");
        }
        assert_eq!(zone_name("Asia/Shanghai", "zh"), "北京时间");
        assert_eq!(zone_name("Asia/Karachi", "zh-Hans"), "卡拉奇时间");
        assert_eq!(zone_name("Europe/Berlin", "zh"), "柏林时间");
        assert_eq!(zone_name("Asia/Yangon", "zh"), "Asia/Yangon时间");
        assert_eq!(zone_name("UTC", "zh"), "协调世界时");
        assert_eq!(zone_name("Asia/Shanghai", "en"), "Asia/Shanghai");
    }

    use super::*;
    use chrono::format::{Item, StrftimeItems};

    #[test]
    fn every_language_has_every_key_and_every_date_pattern_reads() {
        let all = &PageWords::builtin().0;
        let keys = |w: &Words| w.map.keys().cloned().collect::<Vec<_>>();
        let english = keys(&all[0]);
        for w in all {
            assert_eq!(keys(w), english, "the keys of {}", w.language);
            for key in [
                "date",
                "event_start",
                "event_end_same_day",
                "event_end_other_day",
                "event_zone",
            ] {
                let pattern = w.get(key).replace("{weekday}", "x");
                assert!(
                    StrftimeItems::new(&pattern).all(|i| i != Item::Error),
                    "{}: {key} = {pattern:?}",
                    w.language
                );
            }
            assert_eq!(w.get("weekdays").split_whitespace().count(), 7);
            for (l, _) in LABELS {
                assert!(
                    w.map.contains_key(&format!("language_{l}")),
                    "{} names {l}",
                    w.language
                );
            }
        }
    }

    #[test]
    fn words_are_found_by_primary_subtag_and_fall_back_to_english() {
        assert_eq!(words("zh-Hans").get("home"), "首页");
        assert_eq!(words("ZH").language(), "zh");
        assert_eq!(words("fr").get("home"), "Home");
        assert!(has_words("zh-Hant") && !has_words("fr"));
        assert_eq!(
            words("zh").fill("not_in_language", &[("language", "英文")]),
            "这条内容暂无中文版本，以下为英文原文。"
        );
        assert_eq!(words("en").language_name("zh-Hans"), "Chinese");
        assert_eq!(words("zh").language_name("en"), "英文");
        assert_eq!(words("en").language_name("fr"), "fr");
        assert_eq!(PageWords::builtin().endonym("zh"), "中文");
        assert_eq!(PageWords::builtin().endonym("en"), "English");
    }

    #[test]
    fn dates_are_written_as_each_language_writes_them() {
        let t = Utc.with_ymd_and_hms(2023, 11, 9, 6, 0, 0).unwrap();
        assert_eq!(words("en").date(&t), "9 November 2023");
        assert_eq!(words("zh").date(&t), "2023年11月9日");
        let tz = chrono_tz::Asia::Shanghai;
        let end = Some(t + chrono::Duration::minutes(210));
        assert_eq!(
            words("en").event_when(t, end, tz),
            "Thu 9 November 2023, 14:00 – 17:30 CST (UTC+08:00)"
        );
        assert_eq!(
            words("zh").event_when(t, end, tz),
            "2023年11月9日（周四）14:00 – 17:30（北京时间，UTC+08:00）"
        );
        let next_day = Some(t + chrono::Duration::days(1));
        assert_eq!(
            words("zh").event_when(t, next_day, tz),
            "2023年11月9日（周四）14:00 – 2023年11月10日（周五）14:00（北京时间，UTC+08:00）"
        );
        assert_eq!(format_time(&t, "%Q"), t.to_rfc3339());
    }

    #[test]
    fn site_languages_are_checked() {
        let l = SiteLanguages::parse(" zh , en-GB ").unwrap();
        let tags: Vec<&str> = l.all().iter().map(Language::as_str).collect();
        assert_eq!(tags, ["zh", "en-GB"]);
        assert_eq!(l.default_language().as_str(), "zh");
        assert_eq!(SiteLanguages::default().all().len(), 2);
        for bad in ["", "en,", "en,,zh", "e", "en,EN", "fr", "en_GB"] {
            assert!(SiteLanguages::parse(bad).is_err(), "{bad:?}");
        }
        let l = SiteLanguages::default();
        assert_eq!(l.find("ZH").map(Language::as_str), Some("zh"));
        assert_eq!(l.find("zh-CN"), None);
        assert_eq!(l.for_content("zh-Hans").map(Language::as_str), Some("zh"));
        assert_eq!(l.for_content("fr"), None);
    }

    #[test]
    fn accept_language_picks_by_quality_lookup_and_wildcard() {
        let l = SiteLanguages::default();
        let pick = |h: Option<&str>| l.negotiate(h).as_str().to_owned();
        assert_eq!(pick(None), "en");
        assert_eq!(pick(Some("zh-CN,zh;q=0.9,en;q=0.8")), "zh");
        assert_eq!(pick(Some("en;q=0.5, zh-Hant-TW;q=0.8")), "zh");
        assert_eq!(pick(Some("fr-FR, fr;q=0.9")), "en", "unknown: the default");
        assert_eq!(pick(Some("fr, zh;q=0.1")), "zh");
        assert_eq!(pick(Some("*")), "en");
        assert_eq!(
            pick(Some("fr, *;q=0.5, en;q=0")),
            "zh",
            "* minus the refused"
        );
        assert_eq!(
            pick(Some("zh;q=0, en;q=0")),
            "en",
            "all refused: the default"
        );
        assert_eq!(pick(Some("de, EN-us")), "en");
        assert_eq!(
            pick(Some("zh;q=2, en;q=x, ;;, zh-TW")),
            "zh",
            "bad ranges skipped"
        );
        assert_eq!(pick(Some("")), "en");
        let hans = SiteLanguages::parse("en,zh-Hans").unwrap();
        assert_eq!(hans.negotiate(Some("zh")).as_str(), "zh-Hans");
        assert_eq!(hans.negotiate(Some("zh-CN")).as_str(), "zh-Hans");
        assert_eq!(hans.negotiate(Some("z")).as_str(), "en");
    }
}
