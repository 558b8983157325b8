//! The results file and summary: the documented columns, escaped cells, and a summary JSON
//! with the documented keys.

use pingone_bypass::row::RESULT_COLUMNS;
use pingone_bypass::simulator::SimulatorConfig;
use uuid::Uuid;

use crate::support::{
    ENV_A, against, column, read_results, run_config, run_files, run_to_end, start,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_have_the_documented_columns_in_order_then_the_extras() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&format!(
        "env,user,until,note\n{ENV_A},{},8h,hi\n",
        Uuid::new_v4()
    ));
    run_to_end(run_config(&files, against(&simulator))).await;
    let text = std::fs::read_to_string(&files.output).expect("results");
    let header = text.lines().next().unwrap_or_default();
    assert_eq!(
        header,
        "row,environment_id,user_id,until,requested_until,status,http_status,can_bypass_mfa,\
         bypass_mfa_enabled_until,attempts,error_code,error_message,completed_at,note"
    );
    assert_eq!(RESULT_COLUMNS.len(), 13);
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "http_status"), ["200"]);
    let completed = column(&rows, "completed_at")[0];
    assert!(
        pingone_bypass::pingone::parse_exact_bypass_until(completed).is_some(),
        "{completed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cell_can_run_as_a_formula_in_a_spreadsheet() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&format!(
        "env,user,until,ticket,=cmd|' /C calc'!A0\n\
         {ENV_A},{},+90m,=HYPERLINK(\"http://evil.example\"),@SUM(1)\n\
         {ENV_A},-1+1,8h,-2,\"\tx\"\n",
        Uuid::new_v4()
    ));
    run_to_end(run_config(&files, against(&simulator))).await;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(&files.output)
        .expect("results");
    for record in reader.records() {
        let record = record.expect("a CSV record");
        for cell in &record {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "unescaped cell {cell:?} in {record:?}"
            );
        }
    }
    let rows = read_results(&files.output);
    assert_eq!(
        column(&rows, "ticket"),
        ["'=HYPERLINK(\"http://evil.example\")", "'-2"]
    );
    assert_eq!(column(&rows, "until")[0], "'+90m");
    assert_eq!(column(&rows, "user_id")[1], "'-1+1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_json_has_the_documented_keys_and_agrees_with_the_results() {
    let simulator = start(SimulatorConfig::default()).await;
    let user = Uuid::new_v4();
    let files = run_files(&format!(
        "env,user,until\n{ENV_A},{user},8h\n{ENV_A},{user},8h\n{ENV_A},nobody,8h\n"
    ));
    let summary_path = files.output.with_extension("summary.json");
    let mut config = run_config(&files, against(&simulator));
    config.summary_json = Some(summary_path.clone());
    run_to_end(config).await;
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&summary_path).expect("the summary is written"),
    )
    .expect("the summary is JSON");
    let keys: Vec<&str> = summary
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut expected = vec![
        "run_id",
        "total",
        "succeeded",
        "failed",
        "invalid",
        "skipped",
        "not_attempted",
        "planned",
        "shortened",
        "not_active",
        "carried_over",
        "requests",
        "lookups",
        "retries",
        "throttled",
        "token_renewals",
        "elapsed_seconds",
        "rate_per_second",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(summary["total"], 3);
    assert_eq!(summary["succeeded"], 1);
    assert_eq!(summary["skipped"], 1);
    assert_eq!(summary["invalid"], 1);
    assert_eq!(summary["requests"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_results_file_is_kept_unless_overwrite_is_given() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&format!("env,user,until\n{ENV_A},{},8h\n", Uuid::new_v4()));
    std::fs::write(&files.output, "earlier audit trail\n").expect("written");
    let error = pingone_bypass::run::run(run_config(&files, against(&simulator)))
        .await
        .expect_err("the results file exists");
    assert!(error.nothing_sent());
    assert!(error.to_string().contains("--overwrite"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&files.output).ok().as_deref(),
        Some("earlier audit trail\n")
    );
    assert_eq!(simulator.stats().total_puts(), 0);

    let mut config = run_config(&files, against(&simulator));
    config.overwrite = true;
    let outcome = run_to_end(config).await;
    assert_eq!(outcome.summary.succeeded, 1);
}
