// Checks declare the field types they judge (`#[check(field = "mac")]`);
// binding one in checks.xml to a field of another type, or binding a check
// that declares none to a field, is an error at the binding. (Stand-in
// context types keep this case free of the engine.)
mod handlers {
    pub struct CheckCtx<'a>(&'a ());
    pub struct ActionCtx<'a>(&'a ());
    pub struct HandlerError;

    #[auftrag_macros::action]
    pub async fn check_request(_ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Judges hardware addresses: right on `hwa`, wrong on `host`.
    #[auftrag_macros::check(field = "mac")]
    pub async fn check_hwa_unique(_ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Declares both host name types: right on `host` and `alias`.
    #[auftrag_macros::check(field = "hostname dnsname")]
    pub async fn check_host_free(_ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Declares no field type: a global check, wrong in a `<field>`.
    #[auftrag_macros::check]
    pub async fn check_requester_known(_ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Any field.
    #[auftrag_macros::check(field = "any")]
    pub async fn check_no_tabs(_ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }
}

auftrag_macros::definitions!("check_wrong_field_type/", handlers);

fn main() {}
