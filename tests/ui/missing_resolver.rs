// Resolvers that attributes.xml names must exist and be marked #[resolver];
// the error names the XML position and the expected signature. (Stand-in
// context types keep this case free of the engine.)
mod handlers {
    pub struct CheckCtx<'a>(&'a ());
    pub struct ActionCtx<'a>(&'a ());
    pub struct PipCtx<'a>(&'a ());
    pub struct Value;
    pub struct HandlerError;

    #[auftrag_macros::action]
    pub async fn check_request(_ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    #[auftrag_macros::check(field = "mac")]
    pub async fn check_hwa_syntax(_ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    #[auftrag_macros::resolver]
    pub async fn is_staff(_ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
        Ok(None)
    }

    #[auftrag_macros::resolver]
    pub async fn is_admin(_ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
        Ok(None)
    }
}

auftrag_macros::definitions!("missing_resolver/", handlers);

fn main() {}
