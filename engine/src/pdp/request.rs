//! Attributes and requests. The policy enforcement point resolves every
//! attribute the policies can read once per decision (the PIP: resolvers over
//! the device database), then the compiled policies read them by index.

use std::net::IpAddr;

use ipnet::IpNet;

use serde::Serialize;

use super::err::AttrError;

/// Index of an attribute in [`Request`] (and in the compiled attribute table).
pub type AttrId = u16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Subject,
    Resource,
    Action,
    Environment,
}

/// The type of an attribute's values (text-like types of the definitions,
/// such as person, hostname or mac, are strings here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    String,
    Integer,
    Boolean,
    Ip,
    Subnet,
    /// Seconds since the Unix epoch, UTC.
    Time,
}

/// A declared attribute (`attributes.xml`).
#[derive(Debug, Serialize)]
pub struct AttributeDef {
    pub id: AttrId,
    pub name: &'static str,
    pub category: Category,
    pub ty: ValueType,
    /// A bag of values ([`Value::Set`]) rather than one.
    pub multi: bool,
    /// A missing value makes conditions that read it Indeterminate (XACML
    /// MustBePresent); otherwise it reads as an empty bag (comparisons false).
    pub must_be_present: bool,
    /// The resolver that supplies it.
    pub source: &'static str,
    /// Its value at an order's decision is kept with the order
    /// (`record="yes"`): decisions about the stored order (reading it, staff
    /// actions) read the kept value instead of resolving it anew.
    pub recorded: bool,
    pub description: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    String(String),
    Integer(i64),
    Boolean(bool),
    Ip(IpAddr),
    Subnet(IpNet),
    Time(i64),
    /// The values of a multi-valued attribute.
    Set(Vec<Value>),
}

impl Value {
    /// A value as kept with an order (see [`AttributeDef::recorded`]), read
    /// back by the attribute's type; `None` for JSON of another shape.
    pub fn from_json(ty: ValueType, multi: bool, json: &serde_json::Value) -> Option<Value> {
        if multi {
            let items = json.as_array()?;
            return items
                .iter()
                .map(|v| Value::from_json(ty, false, v))
                .collect::<Option<Vec<_>>>()
                .map(Value::Set);
        }
        Some(match ty {
            ValueType::String => Value::String(json.as_str()?.to_owned()),
            ValueType::Integer => Value::Integer(json.as_i64()?),
            ValueType::Boolean => Value::Boolean(json.as_bool()?),
            ValueType::Ip => Value::Ip(json.as_str()?.parse().ok()?),
            ValueType::Subnet => Value::Subnet(json.as_str()?.parse().ok()?),
            ValueType::Time => Value::Time(json.as_i64()?),
        })
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "string",
            Self::Integer(_) => "integer",
            Self::Boolean(_) => "boolean",
            Self::Ip(_) => "ip",
            Self::Subnet(_) => "subnet",
            Self::Time(_) => "time",
            Self::Set(_) => "set",
        }
    }
}

/// The attribute values of one decision, by [`AttrId`]. `None`: no value
/// (the resolver found none); `Some(Err)`: the resolver failed.
#[derive(Debug, Clone)]
pub struct Request {
    pub attributes: &'static [AttributeDef],
    pub values: Vec<Option<Result<Value, AttrError>>>,
}

impl Request {
    /// An empty request over the declared attributes.
    pub fn new(attributes: &'static [AttributeDef]) -> Self {
        Self {
            attributes,
            values: vec![None; attributes.len()],
        }
    }

    pub fn set(&mut self, id: AttrId, value: Value) -> &mut Self {
        self.values[usize::from(id)] = Some(Ok(value));
        self
    }

    pub fn set_error(&mut self, id: AttrId, reason: impl Into<String>) -> &mut Self {
        let name = self.attributes[usize::from(id)].name;
        self.values[usize::from(id)] = Some(Err(AttrError::Unresolved {
            name,
            reason: reason.into(),
        }));
        self
    }

    /// The attribute with this name, if declared.
    pub fn id_of(&self, name: &str) -> Option<AttrId> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.id)
    }
}
