//! Credentials in a run: client credentials with Basic or form authentication, one shared token
//! renewed ahead of expiry, renewal after a 401, and stopping (exit 3) when PingOne rejects
//! the credentials; 403s that stop one environment while the others go on.

use std::collections::HashSet;
use std::time::Duration;

use pingone_bypass::config::Target;
use pingone_bypass::gateway::auth::{ClientCredentials, Credentials};
use pingone_bypass::simulator::{ClientAuthMethod, SimulatorConfig};
use secrecy::SecretString;
use uuid::Uuid;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

use crate::support::{
    ENV_A, ENV_B, as_worker_app, column, eventually, read_results, run_config, run_files,
    run_to_end, start, users_csv,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_expire_every_two_seconds_lose_no_row_and_cost_one_request_a_lifetime() {
    let simulator = start(SimulatorConfig {
        token_ttl: Duration::from_secs(2),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(200, ENV_A, "8h"));
    let mut config = run_config(&files, as_worker_app(&simulator));
    config.rate = 20.0;
    let outcome = run_to_end(config).await;

    assert_eq!(outcome.summary.succeeded, 200, "{:?}", outcome.summary);
    assert_eq!(outcome.aborted, None);
    let stats = simulator.stats();
    // Ten seconds of sending, a token renewed at 80% of its two-second life: about seven.
    assert!(
        (5..=9).contains(&stats.tokens_issued),
        "{} tokens for a ten-second run",
        stats.tokens_issued
    );
    assert_eq!(stats.responses(401), 0, "a request met an expired token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_app_using_http_basic_gets_its_token_at_the_first_request() {
    let simulator = start(SimulatorConfig {
        client_auth: ClientAuthMethod::Basic,
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(20, ENV_A, "8h"));
    let outcome = run_to_end(run_config(&files, as_worker_app(&simulator))).await;
    assert_eq!(outcome.summary.succeeded, 20);
    assert_eq!(simulator.stats().tokens_issued, 1);
    assert_eq!(simulator.stats().responses(401), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_app_using_form_fields_is_found_once_and_remembered() {
    let simulator = start(SimulatorConfig {
        client_auth: ClientAuthMethod::Post,
        token_ttl: Duration::from_secs(1),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(60, ENV_A, "8h"));
    let mut config = run_config(&files, as_worker_app(&simulator));
    config.rate = 20.0;
    let outcome = run_to_end(config).await;
    let rows = read_results(&files.output);
    let errors: std::collections::BTreeSet<_> =
        column(&rows, "error_message").into_iter().collect();
    assert_eq!(outcome.summary.succeeded, 60, "{errors:?}");
    let stats = simulator.stats();
    assert!(stats.tokens_issued >= 3, "{} tokens", stats.tokens_issued);
    assert_eq!(
        stats.responses(401),
        1,
        "HTTP Basic was tried more than once"
    );
}

fn with_secret(simulator: &pingone_bypass::simulator::Simulator, secret: &str) -> Target {
    Target::PingOne {
        api_url: simulator.api_url(),
        credentials: Credentials::Client(ClientCredentials {
            token_url: simulator.token_url(),
            client_id: simulator.credentials().client_id.to_string(),
            client_secret: SecretString::from(secret.to_owned()),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_stops_the_run_before_any_put_and_names_what_to_check() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(30, ENV_A, "8h"));
    let outcome = run_to_end(run_config(&files, with_secret(&simulator, "wrong"))).await;

    let reason = outcome.aborted.expect("the run is aborted");
    assert!(
        reason.contains("PINGONE_CLIENT_SECRET") && reason.contains("invalid_client"),
        "{reason}"
    );
    assert_eq!(simulator.stats().total_puts(), 0);
    let rows = read_results(&files.output);
    assert_eq!(rows.len(), 30);
    assert!(
        column(&rows, "status")
            .iter()
            .all(|status| *status == "not_attempted")
    );
    assert!(
        column(&rows, "error_code")
            .iter()
            .all(|code| *code == "CREDENTIALS_REJECTED")
    );
    assert_eq!(outcome.summary.not_attempted, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_static_token_costs_one_put_then_every_other_row_is_not_attempted() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(50, ENV_A, "8h"));
    let target = Target::PingOne {
        api_url: simulator.api_url(),
        credentials: Credentials::Token(SecretString::from("expired-or-forged".to_owned())),
    };
    let mut config = run_config(&files, target);
    config.concurrency = 32;
    let outcome = run_to_end(config).await;

    // Without the probe, 32 requests would be in flight before the first 401 came back. One
    // is the rule; a probe slower than its one-second patience could let a couple more out.
    let puts = simulator.stats().total_puts();
    assert!(
        (1..=3).contains(&puts),
        "{puts} PUTs sent with a refused token"
    );
    let reason = outcome.aborted.expect("the run is aborted");
    assert!(reason.contains("PINGONE_API_ACCESS_TOKEN"), "{reason}");
    let rows = read_results(&files.output);
    let failed: Vec<_> = rows
        .iter()
        .filter(|row| row["status"] == "failed")
        .collect();
    assert_eq!(failed.len() as u64, puts);
    assert!(failed.iter().all(|row| row["http_status"] == "401"));
    assert_eq!(outcome.summary.not_attempted, 50 - puts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_renewed_and_its_rows_retried() {
    let simulator = std::sync::Arc::new(start(SimulatorConfig::default()).await);
    let files = run_files(&users_csv(100, ENV_A, "8h"));
    let mut config = run_config(&files, as_worker_app(&simulator));
    config.rate = 50.0;
    let run = tokio::spawn(pingone_bypass::run::run(config));
    eventually("20 PUTs", || simulator.stats().total_puts() >= 20).await;
    simulator.revoke_tokens();
    let outcome = run
        .await
        .expect("the run task ends")
        .expect("the run finishes");

    assert_eq!(outcome.summary.succeeded, 100);
    let stats = simulator.stats();
    assert_eq!(stats.tokens_issued, 2, "one token, then one renewal");
    assert!(
        stats.responses(401) >= 1,
        "the revocation was never noticed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_token_that_is_refused_too_stops_the_run() {
    let server = MockServer::start().await;
    let environment = Uuid::new_v4();
    Mock::given(matchers::method("POST"))
        .and(matchers::path(format!("/{environment}/as/token")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "issued-but-useless", "token_type": "Bearer", "expires_in": 3600,
        })))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(matchers::method("PUT"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "id": "e", "code": "ACCESS_FAILED", "message": "The access token is invalid.",
        })))
        .expect(2)
        .mount(&server)
        .await;
    let files = run_files(&users_csv(10, ENV_A, "8h"));
    let target = Target::PingOne {
        api_url: format!("{}/v1", server.uri()),
        credentials: Credentials::Client(ClientCredentials {
            token_url: format!("{}/{environment}/as/token", server.uri()),
            client_id: "client".to_owned(),
            client_secret: SecretString::from("secret".to_owned()),
        }),
    };
    let outcome = run_to_end(run_config(&files, target)).await;
    assert!(outcome.aborted.is_some());
    assert_eq!(outcome.summary.failed, 1);
    assert_eq!(outcome.summary.not_attempted, 9);
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_environment_stops_after_a_few_403s_while_the_others_go_on() {
    let simulator = start(SimulatorConfig {
        forbidden_environments: HashSet::from([ENV_B]),
        ..SimulatorConfig::default()
    })
    .await;
    let mut input = String::from("env,user,until\n");
    for n in 0..40 {
        let environment = if n % 2 == 0 { ENV_A } else { ENV_B };
        input.push_str(&format!("{environment},{},8h\n", Uuid::new_v4()));
    }
    let files = run_files(&input);
    let mut config = run_config(&files, as_worker_app(&simulator));
    config.concurrency = 2;
    let outcome = run_to_end(config).await;

    assert_eq!(outcome.aborted, None);
    let rows = read_results(&files.output);
    let in_b: Vec<_> = rows
        .iter()
        .filter(|row| row["environment_id"] == ENV_B.to_string())
        .collect();
    let in_a: Vec<_> = rows
        .iter()
        .filter(|row| row["environment_id"] == ENV_A.to_string())
        .collect();
    assert!(in_a.iter().all(|row| row["status"] == "succeeded"));
    let refused = in_b
        .iter()
        .filter(|row| row["http_status"] == "403")
        .count();
    assert!(
        (3..=4).contains(&refused),
        "{refused} rows were sent to the forbidden environment"
    );
    let stopped: Vec<_> = in_b
        .iter()
        .filter(|row| row["status"] == "not_attempted")
        .collect();
    assert_eq!(stopped.len(), 20 - refused);
    assert!(
        stopped
            .iter()
            .all(|row| row["error_code"] == "ENVIRONMENT_FORBIDDEN"
                && row["error_message"].contains("Identity Data Admin"))
    );
    assert_eq!(outcome.summary.succeeded, 20);
}
