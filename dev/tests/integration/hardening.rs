//! What a stranger on the internet can make the product do: the Twilio
//! routes refuse anonymous and oversized requests before doing any work.

use warm_transfer_core::signature::sign_form;
use warm_transfer_dev::local::LOCAL_AUTH_TOKEN;

use crate::access::stack;

/// Posts `body` to a Twilio route, signed over `params` when asked.
async fn post_webhook(base: &str, body: Vec<u8>, signed_over: Option<&[(String, String)]>) -> u16 {
    let url = format!("{base}/events/call-status?session=CA00000000000000000000000000000001");
    let mut request = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(params) = signed_over {
        request = request.header(
            "X-Twilio-Signature",
            sign_form(LOCAL_AUTH_TOKEN, &url, params),
        );
    }
    request.body(body).send().await.unwrap().status().as_u16()
}

fn fields(n: usize) -> (Vec<(String, String)>, Vec<u8>) {
    let params: Vec<(String, String)> = (0..n).map(|i| (format!("F{i}"), "1".to_owned())).collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish()
        .into_bytes();
    (params, body)
}

#[tokio::test]
async fn anonymous_and_oversized_webhooks_are_refused_before_work() {
    let stack = stack().await;
    let base = stack.base_url();
    // No signature: 403 whatever the body, even one far over the caps (the
    // header is looked at first).
    assert_eq!(
        post_webhook(&base, b"a&".repeat(2_900_000), None).await,
        403
    );
    // Signed, but larger than any request Twilio sends this product.
    let (params, body) = fields(20_000);
    assert_eq!(body.len() > 32 * 1024, true);
    assert_eq!(post_webhook(&base, body, Some(&params)).await, 413);
    // Signed, small, but with more fields than Twilio ever sends.
    let empty: Vec<(String, String)> = Vec::new();
    assert_eq!(
        post_webhook(&base, b"&".repeat(5_000), Some(&empty)).await,
        400
    );
    let (params, body) = fields(150);
    assert!(body.len() < 32 * 1024);
    assert_eq!(post_webhook(&base, body, Some(&params)).await, 400);
    // A signed request of Twilio's size is still answered.
    let (params, body) = fields(60);
    assert_eq!(post_webhook(&base, body, Some(&params)).await, 200);
}
