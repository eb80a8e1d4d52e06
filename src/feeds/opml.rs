//! stub
pub struct OpmlFeed { pub title: String, pub xml_url: String, pub html_url: String, pub kind: &'static str }
pub fn render(_t: &str, _f: &[OpmlFeed]) -> Vec<u8> { Vec::new() }
