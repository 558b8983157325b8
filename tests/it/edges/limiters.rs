//! Limiters of every shape between the tool and PingOne: PingOne's own token bucket with
//! `Retry-After`, the same behind a gateway that drops the header, and an edge's leaky bucket
//! (with and without burst) that answers with its own HTML page. The simulator answers as each
//! does; a run at three times the limit grants every row against each, counting every 429. How
//! fast the rate settles on each is the throttle's paused-time specifications and the
//! `adaptive_rate` benchmark (BENCHMARKS.md).

use std::num::NonZeroU32;
use std::time::Duration;

use pingone_bypass::simulator::{LimiterShape, RateLimit, SimulatorConfig};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{
    ENV_A, EXPIRY, column, put_bypass, read_results, run_files, start, stderr, users_csv,
};

fn limited_to(per_second: u32, limiter: LimiterShape) -> SimulatorConfig {
    SimulatorConfig {
        rate_limit: NonZeroU32::new(per_second).map(RateLimit::per_second),
        limiter,
        ..SimulatorConfig::default()
    }
}

/// A limit so slow that nothing refills during a specification, so counts are exact.
fn per_minute(requests: u32, limiter: LimiterShape) -> SimulatorConfig {
    SimulatorConfig {
        rate_limit: NonZeroU32::new(requests).map(|requests| RateLimit {
            requests,
            period: Duration::from_secs(60),
        }),
        limiter,
        ..SimulatorConfig::default()
    }
}

/// Statuses of `count` PUTs sent one after another, and the headers and body of the first 429.
async fn burst_of(
    config: SimulatorConfig,
    count: usize,
) -> (
    Vec<StatusCode>,
    Option<(reqwest::header::HeaderMap, String)>,
) {
    let simulator = start(config).await;
    let token = simulator.issue_token();
    let mut statuses = Vec::new();
    let mut first_refusal = None;
    for _ in 0..count {
        let response = put_bypass(&simulator, &token, ENV_A, Uuid::new_v4(), EXPIRY).await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS && first_refusal.is_none() {
            let headers = response.headers().clone();
            first_refusal = Some((headers, response.text().await.unwrap_or_default()));
        }
    }
    (statuses, first_refusal)
}

#[tokio::test]
async fn pingones_own_limiter_lets_a_periods_worth_through_then_answers_json_with_retry_after() {
    let (statuses, refusal) = burst_of(per_minute(10, LimiterShape::Pingone), 12).await;
    assert_eq!(statuses.iter().filter(|s| s.is_success()).count(), 10);
    let (headers, body) = refusal.expect("a 429");
    assert!(headers.contains_key("retry-after"));
    assert!(body.contains("REQUEST_LIMITED"), "{body}");
}

#[tokio::test]
async fn a_token_bucket_behind_a_gateway_answers_json_without_retry_after() {
    let (statuses, refusal) = burst_of(per_minute(10, LimiterShape::TokenBucket), 12).await;
    assert_eq!(statuses.iter().filter(|s| s.is_success()).count(), 10);
    let (headers, body) = refusal.expect("a 429");
    assert!(!headers.contains_key("retry-after"), "{headers:?}");
    assert!(body.contains("REQUEST_LIMITED"), "{body}");
}

#[tokio::test]
async fn a_leaky_bucket_lets_one_through_and_answers_its_own_html_page_without_retry_after() {
    let (statuses, refusal) = burst_of(per_minute(10, LimiterShape::LeakyBucket), 3).await;
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let (headers, body) = refusal.expect("a 429");
    assert!(!headers.contains_key("retry-after"), "{headers:?}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/html")
    );
    assert!(
        body.contains("<title>429 Too Many Requests</title>"),
        "{body}"
    );
}

#[tokio::test]
async fn a_leaky_bucket_with_a_burst_lets_a_tenth_of_a_periods_worth_through_at_once() {
    let (statuses, _) = burst_of(per_minute(50, LimiterShape::LeakyBurst), 8).await;
    assert_eq!(statuses.iter().filter(|s| s.is_success()).count(), 5);
}

/// `run` of 150 rows at `--rate 3x` the simulator's limit of 50/s metered as `limiter`: every
/// row is granted (none spends its retries on 429s), and the summary counts every 429 the
/// simulator sent, none of which reached a row's results.
async fn every_row_is_granted_behind(limiter: LimiterShape) {
    let simulator = start(SimulatorConfig {
        latency: Duration::from_millis(10),
        ..limited_to(50, limiter)
    })
    .await;
    let files = run_files(&users_csv(150, ENV_A, "8h"));
    let (output, summary) = super::run_with_summary(&simulator, &files, "150").await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&files.output);
    assert!(column(&rows, "status").iter().all(|s| *s == "succeeded"));
    assert!(column(&rows, "error_message").iter().all(|m| m.is_empty()));
    let refused = simulator.stats().responses(429);
    assert!(refused > 0, "the limit was never met");
    assert_eq!(summary["throttled"], serde_json::json!(refused));
    assert_eq!(simulator.bypasses().len(), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_is_granted_behind_pingones_own_limiter() {
    every_row_is_granted_behind(LimiterShape::Pingone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_is_granted_behind_a_token_bucket_that_gives_no_retry_after() {
    every_row_is_granted_behind(LimiterShape::TokenBucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_is_granted_behind_a_leaky_bucket_that_answers_html() {
    every_row_is_granted_behind(LimiterShape::LeakyBucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_is_granted_behind_a_leaky_bucket_with_a_burst() {
    every_row_is_granted_behind(LimiterShape::LeakyBurst).await;
}
