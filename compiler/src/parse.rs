//! The raw shapes of the four XML files, as serde reads them.
//!
//! Unknown elements and attributes are reported with positions by the schema
//! check in [`crate::xml`] before serde runs; `deny_unknown_fields` is the
//! second line of defence.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XWorkflows {
    #[serde(rename = "workflow", default)]
    pub workflows: Vec<XWorkflow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XWorkflow {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "state", default)]
    pub states: Vec<XState>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XState {
    #[serde(rename = "@name")]
    pub name: String,
    #[allow(dead_code)] // read through the span index
    #[serde(rename = "@autorun", default)]
    pub autorun: Option<String>,
    #[allow(dead_code)] // read through the span index
    #[serde(rename = "@may_stop", default)]
    pub may_stop: Option<String>,
    #[allow(dead_code)] // read through the span index
    #[serde(rename = "@final", default)]
    pub is_final: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "action", default)]
    pub actions: Vec<XTransition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XTransition {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@resulting_state", default)]
    pub resulting_state: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "condition", default)]
    pub conditions: Vec<XCondition>,
    #[serde(rename = "resulting_state", default)]
    pub results: Vec<XResult>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XResult {
    #[serde(rename = "@return")]
    pub ret: String,
    #[serde(rename = "@state")]
    pub state: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XCondition {
    #[serde(rename = "@test")]
    pub test: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XActions {
    #[serde(rename = "action", default)]
    pub actions: Vec<XAction>,
    #[serde(rename = "condition", default)]
    pub conditions: Vec<XNamedCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XNamedCondition {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@handler")]
    pub handler: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XAction {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@handler")]
    pub handler: String,
    #[serde(rename = "@allowed", default)]
    pub allowed: Option<String>,
    #[serde(rename = "@context", default)]
    pub context: Option<String>,
    #[serde(rename = "@returns", default)]
    pub returns: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XConfig {
    #[serde(rename = "@module")]
    pub module: String,
    #[serde(rename = "global", default)]
    pub globals: Vec<XCheckList>,
    #[serde(rename = "field", default)]
    pub fields: Vec<XFieldChecks>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XCheckList {
    #[serde(rename = "@order_types", default)]
    pub order_types: Option<String>,
    #[serde(rename = "check", default)]
    pub checks: Vec<XCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XFieldChecks {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@order_types", default)]
    pub order_types: Option<String>,
    #[serde(rename = "check", default)]
    pub checks: Vec<XCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XCheck {
    #[serde(rename = "@engine", default)]
    pub engine: Option<String>,
    #[serde(rename = "@portal", default)]
    pub portal: Option<String>,
    #[serde(rename = "@severity", default)]
    pub severity: Option<String>,
    #[allow(dead_code)] // read through the span index
    #[serde(rename = "@syntax", default)]
    pub syntax: Option<String>,
    #[serde(rename = "$text", default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XOrders {
    #[serde(rename = "order", default)]
    pub orders: Vec<XOrder>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XOrder {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@workflow")]
    pub workflow: String,
    #[serde(rename = "@key", default)]
    pub key: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "field", default)]
    pub fields: Vec<XField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XField {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@type")]
    pub ty: String,
    #[allow(dead_code)] // read through the span index
    #[serde(rename = "@required", default)]
    pub required: Option<String>,
    #[serde(rename = "@list", default)]
    pub list: Option<String>,
    #[serde(rename = "@values", default)]
    pub values: Option<String>,
    #[serde(rename = "@min", default)]
    pub min: Option<String>,
    #[serde(rename = "@max", default)]
    pub max: Option<String>,
    #[serde(rename = "@max_length", default)]
    pub max_length: Option<String>,
    #[allow(dead_code)] // read through the span index
    #[serde(rename = "@multiline", default)]
    pub multiline: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "field", default)]
    pub fields: Vec<XField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XQueues {
    #[serde(rename = "queue", default)]
    pub queues: Vec<XQueue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XQueue {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@job_type")]
    pub job_type: String,
    #[serde(rename = "@lease")]
    pub lease: String,
    #[serde(rename = "@attempts")]
    pub attempts: String,
    #[serde(rename = "@retention")]
    pub retention: String,
    #[serde(default)]
    pub description: Option<String>,
}
