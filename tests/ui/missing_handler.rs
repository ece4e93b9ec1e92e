// Handlers the XML names must exist and carry the right attribute; the
// error names the XML position. (Stand-in context types keep this case free
// of the engine.)
mod handlers {
    pub struct CheckCtx<'a>(&'a ());
    pub struct ActionCtx<'a>(&'a ());
    pub struct HandlerError;

    #[auftrag_macros::action]
    pub async fn check_request(_ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    #[auftrag_macros::check]
    pub async fn check_hwa_syntax(_ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }
}

auftrag_macros::definitions!("missing_handler/", handlers);

fn main() {}
