//! Where notifications can go: the word the store keeps, the API shows and
//! the notifier delivers by.

use crate::words;

words! {
    /// The receivers Prism can talk to.
    pub enum ChannelKind {
        /// Any HTTPS endpoint: JSON body, HMAC-SHA256 signature header.
        Webhook => "webhook",
        /// A Slack incoming webhook.
        Slack => "slack",
        /// A DingTalk (钉钉) custom robot, optionally signed.
        Dingtalk => "dingtalk",
        /// A Feishu/Lark (飞书) custom bot, optionally signed.
        Feishu => "feishu",
        /// A WeCom (企业微信) group robot.
        Wecom => "wecom",
        /// E-mail over SMTP.
        Email => "email",
    }
}
