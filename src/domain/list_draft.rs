//! What a list's settings look like as they come in (the API's JSON, the admin form),
//! and the one parser that turns them into a checked [`ListDraft`].

use super::{CronExpr, FieldErrors, ListDraft, OptIn, Schedule, Slug, Text, TimeZone, Visibility};
use serde::Serialize;

/// A list's settings as a client states them; a field left out takes its default.
#[derive(Debug, Clone, Default)]
pub struct ListInput {
    pub slug: String,
    pub name: String,
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
        Some(Schedule {
            cron: cron?,
            timezone: timezone?,
            min_items,
            grace_minutes,
        })
    }
}

impl ListDraft {
    /// Checks every field, reporting all the bad ones at once.
    pub fn parse(input: &ListInput) -> Result<ListDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let slug = errors.check("slug", Slug::parse(&input.slug));
        let name = errors.check("name", Text::parse(&input.name, 200, true, false));
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
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListFields {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub categories: Vec<String>,
    pub opt_in: String,
    pub visibility: String,
    pub schedule_cron: String,
    pub schedule_timezone: String,
    pub min_items: String,
    pub grace_minutes: String,
}

impl ListFields {
    /// The fields of a new list: every default spelt out.
    pub fn blank() -> Self {
        Self {
            opt_in: OptIn::Double.as_str().into(),
            visibility: Visibility::Public.as_str().into(),
            schedule_cron: CronExpr::DEFAULT.into(),
            schedule_timezone: "UTC".into(),
            min_items: "1".into(),
            grace_minutes: "1440".into(),
            ..Default::default()
        }
    }

    /// Checks the fields; the errors of the numbers come first, then the others.
    pub fn parse(&self) -> Result<ListDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let min_items = whole_number("min_items", &self.min_items, &mut errors);
        let grace_minutes = whole_number("grace_minutes", &self.grace_minutes, &mut errors);
        let non_blank = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let input = ListInput {
            slug: if self.slug.is_empty() {
                Slug::from_title(&self.name).as_str().to_owned()
            } else {
                self.slug.clone()
            },
            name: self.name.clone(),
            description: self.description.clone(),
            categories: self.categories.clone(),
            opt_in: non_blank(&self.opt_in),
            visibility: non_blank(&self.visibility),
            schedule: ScheduleInput {
                cron: non_blank(&self.schedule_cron),
                timezone: non_blank(&self.schedule_timezone),
                min_items,
                grace_minutes,
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
}
