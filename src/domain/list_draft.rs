//! What a list's settings look like as they come in (the API's JSON, the admin form),
//! and the one parser that turns them into a checked [`ListDraft`].

use super::local_time::{parse_time_of_day, parse_weekday, weekday_key};
use super::{
    CronExpr, DeliveryZone, FieldErrors, ListDraft, NAME_CHARS, Names, OptIn, Schedule, Slug, Text,
    TimeZone, Visibility,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// A list's settings as a client states them; a field left out takes its default.
#[derive(Debug, Clone, Default)]
pub struct ListInput {
    pub slug: String,
    pub name: String,
    /// Names in other languages by language tag.
    pub names: BTreeMap<String, String>,
    pub description: String,
    /// Category slugs whose items the list's digests carry.
    pub categories: Vec<String>,
    pub opt_in: Option<String>,
    pub visibility: Option<String>,
    pub schedule: ScheduleInput,
}

/// When a list's digest goes out, as a client states it.
#[derive(Debug, Clone, Default)]
pub struct ScheduleInput {
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub min_items: Option<u32>,
    pub grace_minutes: Option<u32>,
    /// `list_zone` (the default) or `reader_zone`.
    pub delivery: Option<String>,
}

/// The most a missed window may be sent late: two weeks.
const MAX_GRACE_MINUTES: u32 = 60 * 24 * 14;

impl ScheduleInput {
    /// Checks the schedule, recording each bad field in `errors`.
    pub fn parse(&self, errors: &mut FieldErrors) -> Option<Schedule> {
        let defaults = Schedule::default();
        let cron = match self.cron.as_deref() {
            Some(c) => errors.check("schedule_cron", CronExpr::parse(c)),
            None => Some(defaults.cron.clone()),
        };
        let timezone = match self.timezone.as_deref() {
            Some(t) => errors.check("schedule_timezone", TimeZone::parse(t)),
            None => Some(defaults.timezone),
        };
        let min_items = self.min_items.unwrap_or(defaults.min_items);
        if !(1..=1000).contains(&min_items) {
            errors.add("min_items", "must be from 1 to 1000");
        }
        let grace_minutes = self.grace_minutes.unwrap_or(defaults.grace_minutes);
        if grace_minutes > MAX_GRACE_MINUTES {
            errors.add("grace_minutes", "must be at most 20160 (two weeks)");
        }
        let delivery = match self.delivery.as_deref() {
            Some(d) => errors.check("schedule_delivery", DeliveryZone::parse(d)),
            None => Some(defaults.delivery),
        };
        Some(Schedule {
            cron: cron?,
            timezone: timezone?,
            min_items,
            grace_minutes,
            delivery: delivery?,
        })
    }
}

impl ListDraft {
    /// Checks every field, reporting all the bad ones at once.
    pub fn parse(input: &ListInput) -> Result<ListDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let slug = errors.check("slug", Slug::parse(&input.slug));
        let name = errors.check("name", Text::parse(&input.name, NAME_CHARS, true, false));
        let names = Names::parse(&input.names, &mut errors);
        let description = errors.check(
            "description",
            Text::parse(&input.description, 2000, false, true),
        );
        let categories: Vec<Slug> = input
            .categories
            .iter()
            .enumerate()
            .filter_map(|(n, c)| errors.check(&format!("categories[{n}]"), Slug::parse(c)))
            .collect();
        let opt_in = match input.opt_in.as_deref() {
            Some(o) => errors.check("opt_in", OptIn::parse(o)),
            None => Some(OptIn::Double),
        };
        let visibility = match input.visibility.as_deref() {
            Some(v) => errors.check("visibility", Visibility::parse(v)),
            None => Some(Visibility::Public),
        };
        let schedule = input.schedule.parse(&mut errors);
        errors.finish(|| {
            Some(ListDraft {
                schedule: schedule?,
                slug: slug?,
                name: name?,
                names: names?,
                description: description?,
                categories,
                opt_in: opt_in?,
                visibility: visibility?,
            })
        })
    }
}

/// A list's settings as a form posts them: every field a string, blank meaning "the
/// default", a blank slug made from the name. Serialised back into the form when it is
/// shown again.
///
/// The schedule is a day and a time (`schedule_day`, `schedule_time`), or the cron
/// expression of the advanced field: the cron expression counts when it was edited
/// (it differs from `schedule_cron_shown`, the one the form was shown with) or when
/// the day is `custom` (a schedule that is not once a week); else the day and time
/// make it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListFields {
    pub slug: String,
    pub name: String,
    /// The name in each language by tag; a blank one is no name in that language.
    pub names: BTreeMap<String, String>,
    pub description: String,
    pub categories: Vec<String>,
    pub opt_in: String,
    pub visibility: String,
    /// `mon` to `sun`, or `custom`.
    pub schedule_day: String,
    /// `08:00`.
    pub schedule_time: String,
    pub schedule_cron: String,
    pub schedule_cron_shown: String,
    pub schedule_timezone: String,
    /// `list_zone` or `reader_zone`.
    pub schedule_delivery: String,
    pub min_items: String,
    pub grace_minutes: String,
}

impl ListFields {
    /// The fields of a new list: every default spelt out.
    pub fn blank() -> Self {
        let mut fields = Self {
            opt_in: OptIn::Double.as_str().into(),
            visibility: Visibility::Public.as_str().into(),
            schedule_timezone: "UTC".into(),
            schedule_delivery: DeliveryZone::ListZone.as_str().into(),
            min_items: "1".into(),
            grace_minutes: "1440".into(),
            ..Default::default()
        };
        fields.show_schedule(&CronExpr::parse(CronExpr::DEFAULT).expect("the default parses"));
        fields
    }

    /// Fills the schedule's fields from a cron expression: its day and time when it
    /// fires once a week, else the day `custom` (the advanced field holds it).
    pub fn show_schedule(&mut self, cron: &CronExpr) {
        self.schedule_cron = cron.as_str().into();
        self.schedule_cron_shown = cron.as_str().into();
        match cron.weekly() {
            Some((day, time)) => {
                self.schedule_day = weekday_key(day).into();
                use chrono::Timelike;
                // Seconds only when there are some, as a time input shows them.
                let format = if time.second() == 0 {
                    "%H:%M"
                } else {
                    "%H:%M:%S"
                };
                self.schedule_time = time.format(format).to_string();
            }
            None => {
                self.schedule_day = "custom".into();
                self.schedule_time = String::new();
            }
        }
    }

    /// The cron expression the form asks for (see the type's doc); `None` with the
    /// day's or the time's error recorded.
    fn cron(&self, errors: &mut FieldErrors) -> Option<String> {
        let cron = self.schedule_cron.trim();
        let edited = cron != self.schedule_cron_shown.trim();
        let (day, time) = (self.schedule_day.trim(), self.schedule_time.trim());
        if edited || day == "custom" || (day.is_empty() && time.is_empty()) {
            return Some(cron.to_owned());
        }
        let day = errors.check("schedule_day", parse_weekday(day));
        let time = errors.check("schedule_time", parse_time_of_day(time));
        Some(CronExpr::weekly_at(day?, time?).as_str().to_owned())
    }

    /// Checks the fields; the errors of the numbers and the day and time come first,
    /// then the others.
    pub fn parse(&self) -> Result<ListDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let min_items = whole_number("min_items", &self.min_items, &mut errors);
        let grace_minutes = whole_number("grace_minutes", &self.grace_minutes, &mut errors);
        let cron = self.cron(&mut errors);
        let non_blank = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let input = ListInput {
            slug: if self.slug.is_empty() {
                Slug::from_title(&self.name).as_str().to_owned()
            } else {
                self.slug.clone()
            },
            name: self.name.clone(),
            names: super::Names::posted(&self.names),
            description: self.description.clone(),
            categories: self.categories.clone(),
            opt_in: non_blank(&self.opt_in),
            visibility: non_blank(&self.visibility),
            schedule: ScheduleInput {
                cron: cron.as_deref().and_then(non_blank),
                timezone: non_blank(&self.schedule_timezone),
                min_items,
                grace_minutes,
                delivery: non_blank(&self.schedule_delivery),
            },
        };
        match ListDraft::parse(&input) {
            Ok(draft) if errors.is_empty() => Ok(draft),
            Ok(_) => Err(errors),
            Err(more) => {
                errors.0.extend(more.0);
                Err(errors)
            }
        }
    }
}

/// A blank number is "not given"; anything else must be a whole number.
fn whole_number(field: &str, s: &str, errors: &mut FieldErrors) -> Option<u32> {
    match s.trim() {
        "" => None,
        n => match n.parse::<u32>() {
            Ok(v) => Some(v),
            Err(_) => {
                errors.add(field, format!("must be a whole number (got {n:?})"));
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_left_to_its_defaults_gets_them() {
        let draft = ListDraft::parse(&ListInput {
            slug: "weekly".into(),
            name: "Weekly".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(draft.opt_in, OptIn::Double);
        assert_eq!(draft.visibility, Visibility::Public);
        assert_eq!(draft.schedule, Schedule::default());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let errors = ListDraft::parse(&ListInput {
            slug: "Not A Slug".into(),
            name: String::new(),
            categories: vec!["ok".into(), "Bad Slug".into()],
            schedule: ScheduleInput {
                cron: Some("every monday".into()),
                min_items: Some(0),
                grace_minutes: Some(MAX_GRACE_MINUTES + 1),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "slug",
                "name",
                "categories[1]",
                "schedule_cron",
                "min_items",
                "grace_minutes"
            ]
        );
    }

    #[test]
    fn a_form_names_its_bad_numbers_first_and_makes_a_slug_from_the_name() {
        let fields = ListFields {
            name: "Partner News".into(),
            min_items: "many".into(),
            visibility: "hidden".into(),
            ..ListFields::blank()
        };
        let errors = fields.parse().unwrap_err();
        let named: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["min_items", "visibility"]);
        let draft = ListFields {
            name: "Partner News".into(),
            ..ListFields::blank()
        }
        .parse()
        .unwrap();
        assert_eq!(draft.slug.as_str(), "partner-news");
    }

    #[test]
    fn a_form_makes_its_schedule_from_the_day_and_time_unless_the_cron_was_edited() {
        let base = ListFields {
            name: "Weekly".into(),
            ..ListFields::blank()
        };
        assert_eq!(
            (base.schedule_day.as_str(), base.schedule_time.as_str()),
            ("mon", "08:00")
        );
        let by_day = ListFields {
            schedule_day: "fri".into(),
            schedule_time: "17:30".into(),
            schedule_delivery: "reader_zone".into(),
            ..base.clone()
        };
        let draft = by_day.parse().unwrap();
        assert_eq!(draft.schedule.cron.as_str(), "0 30 17 * * Fri");
        assert_eq!(draft.schedule.delivery, DeliveryZone::ReaderZone);
        let edited = ListFields {
            schedule_cron: "0 0 9 * * Mon,Thu".into(),
            ..by_day.clone()
        };
        assert_eq!(
            edited.parse().unwrap().schedule.cron.as_str(),
            "0 0 9 * * Mon,Thu"
        );
        let bad = ListFields {
            schedule_day: "someday".into(),
            schedule_time: "25:61".into(),
            schedule_delivery: "the readers'".into(),
            ..base.clone()
        };
        let named: Vec<String> = bad
            .parse()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            named,
            ["schedule_day", "schedule_time", "schedule_delivery"]
        );
        // A form that states no day and no time keeps to the cron field (or the default).
        let bare = ListFields {
            schedule_day: String::new(),
            schedule_time: String::new(),
            schedule_cron: String::new(),
            schedule_cron_shown: String::new(),
            ..base
        };
        assert_eq!(
            bare.parse().unwrap().schedule.cron.as_str(),
            CronExpr::DEFAULT
        );
    }

    #[test]
    fn a_schedule_not_once_a_week_shows_as_custom() {
        let mut fields = ListFields::blank();
        fields.show_schedule(&CronExpr::parse("0 0 8 * * Mon,Thu").unwrap());
        assert_eq!(fields.schedule_day, "custom");
        assert_eq!(fields.schedule_cron, "0 0 8 * * Mon,Thu");
        fields.name = "Twice".into();
        assert_eq!(
            fields.parse().unwrap().schedule.cron.as_str(),
            "0 0 8 * * Mon,Thu"
        );
    }
}
