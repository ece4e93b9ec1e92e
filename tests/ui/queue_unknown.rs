// Handlers name job queues by the handles generated from queues.xml
// (`queues::SIGNING`); a queue that does not exist does not compile, and
// rustc names the closest one. (A stand-in for `auftrag_engine::jobs`
// keeps this case free of the engine: the generated handles name
// `::auftrag_engine::jobs::Queue`.)
extern crate self as auftrag_engine;

pub mod jobs {
    #[derive(Clone, Copy)]
    pub struct Queue(&'static str);

    impl Queue {
        pub const fn declared(name: &'static str) -> Self {
            Self(name)
        }
    }

    pub async fn enqueue_for_order(
        _ctx: &mut crate::handlers::ActionCtx<'_>,
        _queue: Queue,
        _data: &[u8],
    ) -> Result<(), crate::handlers::HandlerError> {
        Ok(())
    }
}

mod handlers {
    pub struct ActionCtx<'a>(pub &'a ());
    pub struct CheckCtx<'a>(pub &'a ());
    pub struct HandlerError;

    #[auftrag_macros::check(field = "dnsname")]
    pub async fn check_name_free(_ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    #[auftrag_macros::action]
    pub async fn sign(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
        crate::jobs::enqueue_for_order(ctx, crate::queues::SIGNING, b"csr").await?;
        crate::jobs::enqueue_for_order(ctx, crate::queues::SIGNNG, b"csr").await
    }
}

auftrag_macros::definitions!("queue_unknown/", handlers);

fn main() {}
