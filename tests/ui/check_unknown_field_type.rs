// `#[check(field = …)]` takes the field types of orders.xml (or `any`); a
// misspelt one is an error at the attribute with the closest name.
mod handlers {
    pub struct CheckCtx<'a>(&'a ());
    pub struct HandlerError;

    #[auftrag_macros::check(field = "hostnme")]
    pub async fn check_host_free(_ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    #[auftrag_macros::check(fields = "mac")]
    pub async fn check_hwa_unique(_ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
