//! Introspection for tests and rehearsals: counters and stored state, from Rust and over HTTP
//! under the reserved `/__simulator/` path.

use std::time::Duration;

use pingone_bypass::simulator::{FaultChances, INTROSPECTION_PREFIX, SimulatorConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{
    ENV_A, ENV_B, EXPIRY, bypass_url, client, eventually, json_of, put_bypass, start,
};

#[tokio::test]
async fn puts_are_counted_per_user_whatever_their_outcome() {
    let simulator = start(SimulatorConfig::default()).await;
    let token = simulator.issue_token();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    put_bypass(&simulator, &token, ENV_A, first, EXPIRY).await;
    put_bypass(&simulator, &token, ENV_A, first, "tomorrow").await;
    put_bypass(&simulator, &token, ENV_A, first, EXPIRY).await;
    put_bypass(&simulator, "forged", ENV_B, second, EXPIRY).await;

    let stats = simulator.stats();
    assert_eq!(stats.puts_for(ENV_A, first), 3);
    assert_eq!(stats.puts_for(ENV_B, second), 1);
    assert_eq!(stats.puts_for(ENV_B, first), 0);
    assert_eq!(stats.total_puts(), 4);
    assert_eq!(stats.responses(200), 2);
    assert_eq!(stats.responses(400), 1);
    assert_eq!(stats.responses(401), 1);
}

#[tokio::test]
async fn the_http_introspection_reports_what_the_rust_handle_reports() {
    let simulator = start(SimulatorConfig::default()).await;
    let token = simulator.issue_token();
    let user = Uuid::new_v4();
    put_bypass(&simulator, &token, ENV_A, user, EXPIRY).await;
    put_bypass(&simulator, "forged", ENV_A, Uuid::new_v4(), EXPIRY).await;

    let base = simulator.auth_url();
    let stats = json_of(
        client()
            .get(format!("{base}{INTROSPECTION_PREFIX}/stats"))
            .send()
            .await
            .expect("the simulator answers"),
    )
    .await;
    let state = json_of(
        client()
            .get(format!("{base}{INTROSPECTION_PREFIX}/state"))
            .send()
            .await
            .expect("the simulator answers"),
    )
    .await;

    assert_eq!(
        stats,
        serde_json::to_value(simulator.stats()).unwrap_or_default()
    );
    assert_eq!(stats["responses_by_status"], json!({ "200": 1, "401": 1 }));
    assert_eq!(
        state,
        json!({ "bypasses": [{
            "environment_id": ENV_A,
            "user_id": user,
            "bypass_mfa_enabled_until": EXPIRY,
        }] })
    );
}

#[tokio::test]
async fn introspection_requests_are_not_counted() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = client()
        .get(format!(
            "{}{INTROSPECTION_PREFIX}/stats",
            simulator.auth_url()
        ))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(response.status(), StatusCode::OK);
    let stats: Value = json_of(response).await;
    assert_eq!(stats["responses_by_status"], json!({}));
    assert!(simulator.stats().responses_by_status.is_empty());
}

#[tokio::test]
async fn the_peak_of_requests_in_flight_is_recorded() {
    let simulator = start(SimulatorConfig {
        faults: FaultChances {
            hang: 1.0,
            ..FaultChances::default()
        },
        hang_for: Duration::from_secs(60),
        ..SimulatorConfig::default()
    })
    .await;
    let token = simulator.issue_token();
    let url = bypass_url(&simulator, ENV_A, Uuid::new_v4());
    let concurrent = 6;
    let hanging: Vec<_> = (0..concurrent)
        .map(|_| {
            let request = client()
                .put(&url)
                .bearer_auth(&token)
                .json(&json!({ "bypassMFAEnabledUntil": EXPIRY }))
                .send();
            tokio::spawn(request)
        })
        .collect();
    eventually("six requests in flight", || {
        simulator.stats().in_flight == concurrent
    })
    .await;
    assert_eq!(simulator.stats().peak_in_flight, concurrent);

    simulator.shutdown().await;
    for request in hanging {
        let outcome = request.await.expect("the request task ends");
        assert!(outcome.is_err(), "a hanging request was answered");
    }
}
