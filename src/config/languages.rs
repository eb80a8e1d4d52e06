//! The languages the site is read in.

use crate::i18n::SiteLanguages;
use anyhow::anyhow;

/// The language flag and variable as given; [`LanguageArgs::languages`] checks them.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Languages")]
pub struct LanguageArgs {
    /// The languages pages and feeds are read in, as language tags separated by commas,
    /// the site's default first: every page is also at /TAG/... (the front page / picks
    /// one by Accept-Language), every feed also at ?lang=TAG. Each needs page labels
    /// (templates/web/labels.TAG.json; en and zh are built in, another language's go in
    /// NEWSDESK_TEMPLATES_DIR/web/).
    #[arg(
        long,
        global = true,
        value_name = "TAGS",
        env = LANGUAGES,
        hide_env_values = true,
        default_value = "en,zh"
    )]
    pub languages: String,
}

const LANGUAGES: &str = "NEWSDESK_LANGUAGES";

impl LanguageArgs {
    /// The languages; one without built-in labels needs its own in `templates_dir`.
    pub fn languages(
        &self,
        templates_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<SiteLanguages> {
        SiteLanguages::parse_with(&self.languages, templates_dir)
            .map_err(|e| anyhow!("{LANGUAGES} {e}"))
    }
}
