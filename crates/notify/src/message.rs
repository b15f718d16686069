//! A notice in words, in English or Simplified Chinese.

use serde::{Deserialize, Serialize};

use crate::notice::{Notice, NoticeKind};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Lang {
    /// The stored word: `en` or `zh-CN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "en" => Some(Lang::En),
            "zh-CN" => Some(Lang::ZhCn),
            _ => None,
        }
    }
}

/// A rendered message: a one-line title and a few lines of text (plain, with
/// the link on its own line, so every receiver shows it sensibly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub title: String,
    pub text: String,
}

fn headline(n: &Notice, lang: Lang) -> String {
    let env = n.environment.as_deref().unwrap_or("-");
    let (app, rel) = (&n.application, &n.release);
    match (lang, n.kind) {
        (Lang::En, NoticeKind::BuildFailed) => format!("Build of {app} {rel} failed"),
        (Lang::En, NoticeKind::BuildSucceeded) => format!("Build of {app} {rel} succeeded"),
        (Lang::En, NoticeKind::DeployAwaitingApproval) => format!("{app} {rel} to {env} waits for approval"),
        (Lang::En, NoticeKind::DeploySucceeded) => format!("{app} {rel} deployed to {env}"),
        (Lang::En, NoticeKind::DeployFailed) => format!("Deploy of {app} {rel} to {env} failed"),
        (Lang::En, NoticeKind::AutoRollback) => format!("{app} in {env} rolled back automatically"),
        (Lang::En, NoticeKind::HoldPlaced) => format!("{env} is held for {app}"),
        (Lang::En, NoticeKind::HoldOverridden) => format!("The hold on {env} for {app} was overridden"),
        (Lang::En, NoticeKind::FreezeBroken) => format!("Freeze broken: {app} {rel} deployed to {env}"),
        (Lang::En, NoticeKind::Test) => format!("Test message from Prism to {app}"),
        (Lang::ZhCn, NoticeKind::BuildFailed) => format!("{app} {rel} 构建失败"),
        (Lang::ZhCn, NoticeKind::BuildSucceeded) => format!("{app} {rel} 构建成功"),
        (Lang::ZhCn, NoticeKind::DeployAwaitingApproval) => format!("{app} {rel} 发布到 {env} 等待审批"),
        (Lang::ZhCn, NoticeKind::DeploySucceeded) => format!("{app} {rel} 已发布到 {env}"),
        (Lang::ZhCn, NoticeKind::DeployFailed) => format!("{app} {rel} 发布到 {env} 失败"),
        (Lang::ZhCn, NoticeKind::AutoRollback) => format!("{app} 在 {env} 已自动回滚"),
        (Lang::ZhCn, NoticeKind::HoldPlaced) => format!("{env} 已为 {app} 锁定"),
        (Lang::ZhCn, NoticeKind::HoldOverridden) => format!("{env} 上 {app} 的锁定被强制解除"),
        (Lang::ZhCn, NoticeKind::FreezeBroken) => format!("封网期间紧急发布: {app} {rel} 到 {env}"),
        (Lang::ZhCn, NoticeKind::Test) => format!("Prism 发往 {app} 的测试消息"),
    }
}

pub fn render(n: &Notice, lang: Lang) -> Message {
    let title = headline(n, lang);
    let (project, by, why, open) = match lang {
        Lang::En => ("Project", "By", "Reason", "Open"),
        Lang::ZhCn => ("项目", "操作人", "原因", "查看"),
    };
    let mut text = format!("{title}\n{project}: {}\n{by}: {}", n.project, n.actor);
    if let Some(r) = &n.reason {
        // One line per message keeps chat previews readable; long reasons are cut.
        let r: String = r.chars().take(500).collect();
        text.push_str(&format!("\n{why}: {r}"));
    }
    text.push_str(&format!("\n{open}: {}", n.link));
    Message { title, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind) -> Notice {
        Notice {
            kind,
            project: "shop".into(),
            application: "web".into(),
            release: "r42".into(),
            environment: Some("prd".into()),
            actor: "olga".into(),
            reason: Some("rollout did not finish".into()),
            link: "https://prism.example/deploys/7".into(),
        }
    }

    #[test]
    fn every_kind_reads_in_both_languages_with_the_link() {
        for kind in NoticeKind::ALL {
            for lang in [Lang::En, Lang::ZhCn] {
                let m = render(&notice(*kind), lang);
                assert!(m.title.contains("web"), "{kind} {lang:?}: {}", m.title);
                assert!(m.text.ends_with("https://prism.example/deploys/7"), "{}", m.text);
                assert!(m.text.contains("olga"));
            }
        }
        assert_eq!(
            render(&notice(NoticeKind::DeployFailed), Lang::ZhCn).title,
            "web r42 发布到 prd 失败"
        );
        assert_eq!(
            render(&notice(NoticeKind::DeployFailed), Lang::En).title,
            "Deploy of web r42 to prd failed"
        );
    }

    #[test]
    fn long_reasons_are_cut() {
        let mut n = notice(NoticeKind::BuildFailed);
        n.reason = Some("x".repeat(5000));
        assert!(render(&n, Lang::En).text.len() < 700);
    }
}
