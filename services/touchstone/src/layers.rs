//! What the server's tower layers (keys, limits, metrics, trace context) share.

/// A layer's response future.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// The inner service that `poll_ready` made ready, leaving a clone in its place: tower's
/// rule for calling a cloned service from `call`.
pub fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}
