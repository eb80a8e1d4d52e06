//! Demo content: the 2023 UNEVOC Network Coaction Initiative as a school's news office
//! would have published it, from the facts of the seed news page, in our own words.
//! The final session and the report are each one item in English with a Chinese
//! version, for the partner that reads Chinese.

use crate::domain::{
    Event, EventMode, ItemDraft, ItemStatus, Language, NewCategory, Slug, Text, TimeZone,
    VersionDraft,
};
use crate::services::content::store_new_item;
use crate::store::Store;
use anyhow::Context;
use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};

pub enum Loaded {
    Skipped,
    Loaded { categories: usize, items: usize },
}

/// The five partner institutions of the initiative.
pub const PARTNERS: [&str; 5] = [
    "National Technical University of Pakistan",
    "Preah Kossomak Polytechnic Institute of Cambodia",
    "Temasek Polytechnic of Singapore",
    "University Tun Hussein Onn Malaysia",
    "Zhejiang Technical Institute of Economics",
];

/// The Chinese name of the partner in China, which its contacts read in their digest.
pub const ZHEJIANG_NAME_ZH: &str = "浙江经济职业技术学院";

pub const FINAL_SESSION_SLUG: &str = "unevoc-coaction-initiative-2023-final-session";
pub const REPORT_SLUG: &str = "unevoc-coaction-initiative-2023-concludes";
/// The Chinese titles of the final session and of the report.
pub const FINAL_SESSION_TITLE_ZH: &str = "2023 UNEVOC网络协作倡议项目：最后一场研讨会暨闭幕式";
pub const REPORT_TITLE_ZH: &str = "2023 UNEVOC网络协作倡议项目圆满落幕，六所院校交流数字化转型案例";

struct DemoItem {
    slug: &'static str,
    title: &'static str,
    summary: &'static str,
    /// Markdown; `{partners}` stands for the list of partner institutions.
    body: &'static str,
    language: &'static str,
    category: &'static str,
    tags: &'static [&'static str],
    /// Month, day, hour and minute of 2023, Shanghai time.
    published: (u32, u32, u32, u32),
    event: DemoEvent,
    /// The Chinese version, when there is one.
    zh: Option<DemoVersion>,
}

/// A language version of a demo item.
struct DemoVersion {
    title: &'static str,
    summary: &'static str,
    body: &'static str,
    /// For an event: the venue in this language.
    venue: Option<&'static str>,
}

enum DemoEvent {
    None,
    /// An afternoon online session.
    OnlineSession {
        day: u32,
        month: u32,
    },
    /// The closing session, on campus and online.
    FinalSession,
}

fn shanghai(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    let naive = NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|date| date.and_hms_opt(h, min, 0))
        .expect("a valid demo date");
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&naive)
        .single()
        .expect("Shanghai has no clock changes")
        .with_timezone(&Utc)
}

fn shanghai_zone() -> TimeZone {
    TimeZone::parse("Asia/Shanghai").expect("a known zone")
}

impl DemoEvent {
    fn event(&self) -> Option<Event> {
        match *self {
            Self::None => None,
            Self::OnlineSession { day, month } => Some(Event {
                starts_at: shanghai(2023, month, day, 14, 0),
                ends_at: Some(shanghai(2023, month, day, 17, 0)),
                timezone: shanghai_zone(),
                venue: None,
                online_url: Some("https://meet.example.org/unevoc-coaction-2023".into()),
                mode: EventMode::Online,
                mode_text: None,
            }),
            Self::FinalSession => Some(Event {
                starts_at: shanghai(2023, 11, 9, 14, 0),
                ends_at: Some(shanghai(2023, 11, 9, 17, 30)),
                timezone: shanghai_zone(),
                venue: Some(
                    "Liuxiandong Campus, No. 7098 Liuxian Avenue, Nanshan District, Shenzhen"
                        .into(),
                ),
                online_url: Some("https://meet.example.org/unevoc-coaction-2023".into()),
                mode: EventMode::Hybrid,
                mode_text: None,
            }),
        }
    }
}

impl DemoItem {
    /// The item as the news office would have written it.
    fn draft(&self) -> anyhow::Result<ItemDraft> {
        let err = anyhow::Error::msg;
        let text = |s: &str, max| Text::parse(s, max, false, true).map_err(err);
        let partners = PARTNERS.map(|p| format!("- {p}")).join("\n");
        let author = if self.slug == REPORT_SLUG {
            "Pan Liucheng"
        } else {
            "News Office"
        };
        let (month, day, hour, minute) = self.published;
        Ok(ItemDraft {
            slug: Slug::parse(self.slug).map_err(err)?,
            slug_from_title: false,
            title: text(self.title, 300)?,
            summary: text(self.summary, 2000)?,
            body_markdown: text(&self.body.replace("{partners}", &partners), 200_000)?,
            author: text(author, 200)?,
            org_unit: text("Asia-Africa Center", 200)?,
            language: Language::parse(self.language).map_err(err)?,
            categories: vec![Slug::parse(self.category).map_err(err)?],
            tags: self
                .tags
                .iter()
                .map(|t| text(t, 100))
                .collect::<anyhow::Result<_>>()?,
            status: ItemStatus::Published,
            published_at: Some(shanghai(2023, month, day, hour, minute)),
            event: self.event.event(),
            translations: self
                .zh
                .iter()
                .map(|v| {
                    Ok(VersionDraft {
                        language: Language::parse("zh").map_err(err)?,
                        title: text(v.title, 300)?,
                        summary: text(v.summary, 2000)?,
                        body_markdown: text(v.body, 200_000)?,
                        venue: v.venue.map(|venue| text(venue, 500)).transpose()?,
                        // The mode's standard Chinese words.
                        mode_text: None,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

/// The news office's items, oldest first.
const ITEMS: [DemoItem; 7] = [
    DemoItem {
        slug: "unevoc-coaction-initiative-2023-approved",
        title: "Our school will host a 2023 UNEVOC Network Coaction Initiative",
        summary: "UNEVOC Network approved the school's application: one of only two Coaction Initiative programmes in the world this year.",
        body: "The UNEVOC Network has approved our application to run a **2023 UNEVOC Network Coaction Initiative**. \
               Only two programmes were approved worldwide this year.\n\n\
               The initiative is funded by the UNEVOC Network and organised by the **Asia-Africa Center**. \
               It will build capacity for the *digital transformation of vocational education* together with partner \
               colleges and universities in the Asia-Pacific region, in a series of online and on-site sessions.",
        language: "en",
        category: "news",
        tags: &["UNEVOC", "digital transformation"],
        published: (9, 18, 10, 0),
        event: DemoEvent::None,
        zh: None,
    },
    DemoItem {
        slug: "unevoc-coaction-initiative-2023-partners",
        title: "Five partner institutions join the UNEVOC Coaction Initiative",
        summary: "Leaders, teachers and experts from five colleges and universities will take part in the seminar series.",
        body: "More than sixty leaders, teachers and experts from five partner institutions will take part in the \
             2023 UNEVOC Network Coaction Initiative:\n\n{partners}\n\n\
             Partners join the sessions online; the closing session is held on our Liuxiandong Campus and streamed.",
        language: "en",
        category: "news",
        tags: &["UNEVOC", "partners"],
        published: (10, 9, 9, 30),
        event: DemoEvent::None,
        zh: None,
    },
    DemoItem {
        slug: "unevoc-coaction-session-1-theories-and-methods",
        title: "Coaction Initiative session 1: theories and methods for digital transformation",
        summary: "The first online session looks at theories and methods for the digital transformation of vocational education.",
        body: "The first session of the initiative is about **theories and methods for the digital transformation of \
               vocational education**. It combines an expert report, group discussion and a sharing of the results.",
        language: "en",
        category: "events",
        tags: &["UNEVOC", "seminar"],
        published: (10, 10, 9, 0),
        event: DemoEvent::OnlineSession { day: 17, month: 10 },
        zh: None,
    },
    DemoItem {
        slug: "unevoc-coaction-session-2-majors-and-courses",
        title: "Coaction Initiative session 2: majors and courses",
        summary: "The second online session covers how vocational majors and courses develop and change.",
        body: "Session two turns to the **development and transformation of vocational education majors and courses**, \
               with an expert report and group work among the partner institutions.",
        language: "en",
        category: "events",
        tags: &["UNEVOC", "seminar"],
        published: (10, 16, 9, 0),
        event: DemoEvent::OnlineSession { day: 24, month: 10 },
        zh: None,
    },
    DemoItem {
        slug: "unevoc-coaction-session-3-digital-pedagogy",
        title: "Coaction Initiative session 3: digital education technology and pedagogy",
        summary: "The third online session: digital education technology, digital pedagogy and open education platforms.",
        body: "The third session covers **digital education technology, digital pedagogy and open education platforms**. \
               Groups share what they discussed in the earlier sessions.",
        language: "en",
        category: "events",
        tags: &["UNEVOC", "seminar"],
        published: (10, 23, 9, 0),
        event: DemoEvent::OnlineSession { day: 31, month: 10 },
        zh: None,
    },
    DemoItem {
        slug: FINAL_SESSION_SLUG,
        title: "2023 UNEVOC Network Coaction Initiative: final session and closing ceremony",
        summary: "Partners share their digital transformation cases, then the seminar closes, on Liuxiandong Campus and online.",
        body: "The final session of the **2023 UNEVOC Network Coaction Initiative** brings the seminar series to a close.\n\n\
               1. Case sharing: each partner institution presents its own digital transformation case.\n\
               2. Closing ceremony, with a concluding speech from the Director of the UNEVOC Network Secretariat.\n\n\
               Join us in person on Liuxiandong Campus or follow online.",
        language: "en",
        category: "events",
        tags: &["UNEVOC", "seminar", "closing ceremony"],
        published: (11, 1, 9, 0),
        event: DemoEvent::FinalSession,
        zh: Some(DemoVersion {
            title: FINAL_SESSION_TITLE_ZH,
            summary: "各合作院校交流本校的数字化转型案例，研讨会随后闭幕；留仙洞校区现场与线上同步进行。",
            body: "**2023 UNEVOC网络协作倡议项目**将以本场研讨会结束整个系列研讨。\n\n\
                   1. 案例交流：每所合作院校介绍本校的数字化转型案例。\n\
                   2. 闭幕式：UNEVOC网络秘书处主任作总结讲话。\n\n\
                   欢迎来留仙洞校区现场参加，也可以在线参与。",
            venue: Some("深圳市南山区留仙大道7098号，留仙洞校区"),
        }),
    },
    DemoItem {
        slug: REPORT_SLUG,
        title: "The 2023 UNEVOC Network Coaction Initiative ends with shared cases from six institutions",
        summary: "On 9 November the final session on Liuxiandong Campus closed the seminar on the digital transformation of vocational education.",
        body: "On the afternoon of **9 November 2023** the final session of the 2023 UNEVOC Network Coaction Initiative \
               was held on Liuxiandong Campus, online and on site.\n\n\
               Each institution presented a case:\n\n\
               - **Our school** (Zhong Zhuoya, Asia-Africa Center): a digital transformation programme in ten areas, \
               from talent training and digital governance to teaching reform, and close cooperation with industry.\n\
               - **National Technical University of Pakistan**: resistance to change, skills gaps, data privacy and cost, \
               and answers such as data analysis and a virtual learning environment.\n\
               - **Preah Kossomak Polytechnic Institute of Cambodia**: a national management information system that uses \
               data to help students into jobs and training.\n\
               - **Temasek Polytechnic of Singapore**: models of self-governance, connection and expert knowledge, with AI \
               and teacher training.\n\
               - **University Tun Hussein Onn Malaysia**: digital majors, MOOCs, micro-credentials and the multi-institution \
               Edu 4.0 programme.\n\
               - **Zhejiang Technical Institute of Economics**: digital application and resource systems on a private campus cloud.\n\n\
               Olivier Presume, Director of the UNEVOC Network Secretariat, closed the seminar and asked that the cases be \
               shared with the wider vocational education community.\n\n\
               *Reported by Pan Liucheng, Asia-Africa Center.*",
        language: "en",
        category: "news",
        tags: &["UNEVOC", "report"],
        published: (11, 10, 9, 0),
        event: DemoEvent::None,
        zh: Some(DemoVersion {
            title: REPORT_TITLE_ZH,
            summary: "11月9日下午，项目最后一场研讨会在留仙洞校区举行，现场与线上同步，职业教育数字化转型系列研讨至此结束。",
            body: "**2023年11月9日**下午，2023 UNEVOC网络协作倡议项目最后一场研讨会在留仙洞校区举行，\
                   现场与线上同步进行。\n\n\
                   各院校分别介绍了本校的案例：\n\n\
                   - **我校**（亚非中心）：涵盖人才培养、数字治理、教学改革等十个方面的数字化转型方案，\
                   以及与行业企业的紧密合作。\n\
                   - **巴基斯坦国立技术大学**（National Technical University of Pakistan）：\
                   变革阻力、技能差距、数据隐私和成本等挑战，以及数据分析、虚拟学习环境等应对办法。\n\
                   - **柬埔寨普列哥索玛理工学院**（Preah Kossomak Polytechnic Institute）：\
                   依托全国职业教育管理信息系统，用数据帮助学生就业和参加技能培训。\n\
                   - **新加坡淡马锡理工学院**：“自我管理”“连接”“专业知识”三种模式，并借助人工智能和教师培训\
                   帮助学生为未来的工作做好准备。\n\
                   - **马来西亚敦胡先翁大学**：数字化专业、慕课、微证书，以及多所院校合作的 Edu 4.0 计划。\n\
                   - **浙江经济职业技术学院**：建立在校园私有云上的数字化应用体系和资源体系。\n\n\
                   UNEVOC网络秘书处主任在闭幕时作总结讲话，希望把这些案例分享给更广泛的职业教育界。\n\n\
                   *（亚非中心供稿）*",
            venue: None,
        }),
    },
];

/// The once-per-database job of loading the demo.
const DEMO_JOB: &str = "demo";
/// How long a loader holds the job before another may take it over (a loader that
/// died); loading takes well under a second.
const DEMO_LEASE_SECS: i64 = 120;

/// Loads the demo tree and items into an empty store; leaves a store with content alone.
/// Several instances starting with `--demo` at once on one database are safe: the one
/// that claims the job loads, the others wait until it is done and skip.
pub async fn load(store: &Store, now: DateTime<Utc>) -> anyhow::Result<Loaded> {
    let limits = store.limits();
    loop {
        if limits.claim_once(DEMO_JOB, DEMO_LEASE_SECS).await? {
            let loaded = load_content(store, now).await;
            limits.finish_once(DEMO_JOB, loaded.is_ok()).await?;
            return loaded;
        }
        if limits.once_done(DEMO_JOB).await? {
            return Ok(Loaded::Skipped);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A demo name's Chinese version.
fn in_chinese(name: &str) -> crate::domain::Names {
    crate::domain::Names::from_stored([("zh".to_owned(), name.to_owned())])
}

async fn load_content(store: &Store, now: DateTime<Utc>) -> anyhow::Result<Loaded> {
    let has_content = !store.content().categories().await?.is_empty();
    if has_content {
        return Ok(Loaded::Skipped);
    }
    let tree = [
        (
            "news-events",
            "News & Events",
            "新闻与活动",
            "News and events of the school",
            None,
        ),
        (
            "news",
            "News",
            "新闻",
            "Reports and announcements",
            Some("news-events"),
        ),
        (
            "events",
            "Events",
            "活动",
            "Seminars, ceremonies and other events",
            Some("news-events"),
        ),
    ];
    for (slug, name, chinese, description, parent) in tree {
        let new = NewCategory {
            slug: Slug::parse(slug).map_err(anyhow::Error::msg)?,
            name: Text::parse(name, 200, true, false).map_err(anyhow::Error::msg)?,
            names: in_chinese(chinese),
            description: Text::parse(description, 2000, false, true).map_err(anyhow::Error::msg)?,
            parent: parent
                .map(Slug::parse)
                .transpose()
                .map_err(anyhow::Error::msg)?,
        };
        store
            .content()
            .create_category(&new, now)
            .await
            .with_context(|| format!("creating demo category {slug}"))?;
    }
    for item in &ITEMS {
        let draft = item.draft()?;
        let published = draft.published_at.unwrap_or(now);
        store_new_item(store, &draft, published)
            .await
            .with_context(|| format!("creating demo item {}", item.slug))?;
    }
    load_people(store, now).await?;
    Ok(Loaded::Loaded {
        categories: tree.len(),
        items: ITEMS.len(),
    })
}

/// The five partners with their time zones and languages, and one or two contacts each
/// at reserved example domains.
/// Name, country, time zone, language, website, contacts (name, address).
type PartnerDetails = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const PARTNER_DETAILS: [PartnerDetails; 5] = [
    (
        PARTNERS[0],
        "Pakistan",
        "Asia/Karachi",
        "en",
        "https://ntu-pk.example.edu",
        &[
            ("Ayesha Khan", "ayesha.khan@ntu-pk.example.edu"),
            ("Bilal Ahmed", "bilal.ahmed@ntu-pk.example.edu"),
        ],
    ),
    (
        PARTNERS[1],
        "Cambodia",
        "Asia/Phnom_Penh",
        "en",
        "https://ppi-kh.example.edu",
        &[("Sokha Chan", "sokha.chan@ppi-kh.example.edu")],
    ),
    (
        PARTNERS[2],
        "Singapore",
        "Asia/Singapore",
        "en",
        "https://tp-sg.example.edu",
        &[
            ("Wei Ling Tan", "weiling.tan@tp-sg.example.edu"),
            ("Rajesh Kumar", "rajesh.kumar@tp-sg.example.edu"),
        ],
    ),
    (
        PARTNERS[3],
        "Malaysia",
        "Asia/Kuala_Lumpur",
        "en",
        "https://uthm-my.example.edu",
        &[("Nurul Aisyah", "nurul.aisyah@uthm-my.example.edu")],
    ),
    (
        PARTNERS[4],
        "China",
        "Asia/Shanghai",
        "zh",
        "https://zjtie-cn.example.edu",
        &[
            ("Li Wei", "li.wei@zjtie-cn.example.edu"),
            ("Chen Jing", "chen.jing@zjtie-cn.example.edu"),
        ],
    ),
];

pub const PARTNERS_LIST: &str = "partners";

async fn load_people(store: &Store, now: DateTime<Utc>) -> anyhow::Result<()> {
    use crate::domain::{
        Consent, Email, JoinedVia, ListDraft, MembershipStatus, OptIn, PartnerDraft,
        SubscriberDraft, Visibility,
    };
    let err = anyhow::Error::msg;
    let list = store
        .lists()
        .create(
            &ListDraft {
                slug: Slug::parse(PARTNERS_LIST).map_err(err)?,
                name: Text::parse("Partner institutions digest", 200, true, false).map_err(err)?,
                names: in_chinese("合作院校通讯"),
                description: Text::parse(
                    "A weekly digest of news and events for the staff of our partner institutions.",
                    2000,
                    false,
                    true,
                )
                .map_err(err)?,
                categories: vec![Slug::parse("news-events").map_err(err)?],
                opt_in: OptIn::Double,
                visibility: Visibility::Public,
                schedule: crate::domain::Schedule {
                    timezone: TimeZone::parse("Asia/Shanghai").map_err(err)?,
                    ..Default::default()
                },
            },
            now,
        )
        .await
        .context("creating the demo list")?;
    let consent = Consent {
        source: "demo: contact named by the partner institution for the 2023 initiative".into(),
        ip: None,
    };
    for (name, country, tz, language, website, contacts) in PARTNER_DETAILS {
        let partner = store
            .people()
            .create_partner(
                &PartnerDraft {
                    name: Text::parse(name, 200, true, false).map_err(err)?,
                    names: if name == PARTNERS[4] {
                        in_chinese(ZHEJIANG_NAME_ZH)
                    } else {
                        Default::default()
                    },
                    country: Text::parse(country, 100, false, false).map_err(err)?,
                    website: Some(website.into()),
                    timezone: TimeZone::parse(tz).map_err(err)?,
                    language: Language::parse(language).map_err(err)?,
                },
                now,
            )
            .await
            .with_context(|| format!("creating demo partner {name}"))?;
        for (person, email) in contacts {
            let subscriber = store
                .people()
                .create_subscriber(
                    &SubscriberDraft {
                        email: Email::parse(email).map_err(err)?,
                        name: Text::parse(person, 200, false, false).map_err(err)?,
                        partner: Some(partner.id),
                        language: Language::parse(language).map_err(err)?,
                        timezone: None,
                        attributes: Default::default(),
                    },
                    JoinedVia::Admin,
                    Some(&consent),
                    now,
                )
                .await
                .with_context(|| format!("creating demo contact {email}"))?;
            store
                .lists()
                .set_membership(
                    list.id,
                    subscriber.id,
                    MembershipStatus::Confirmed,
                    "demo contact",
                    now,
                )
                .await?;
        }
    }
    Ok(())
}
