//! Reading: header aliases, delimiters, BOM, defaults and extra columns, as docs/cli.md says.

use pingone_bypass::simulator::SimulatorConfig;
use uuid::Uuid;

use crate::support::{
    ENV_A, ENV_B, against, column, read_results, run_config, run_files, run_to_end, start,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semicolon_files_with_a_bom_and_aliased_headers_are_read() {
    let simulator = start(SimulatorConfig::default()).await;
    let user = Uuid::new_v4();
    let files = run_files(&format!(
        "\u{feff}Environment ID;User_Id;bypassMFAEnabledUntil\n{ENV_A};{user};8h\n"
    ));
    let outcome = run_to_end(run_config(&files, against(&simulator))).await;
    assert_eq!(outcome.summary.succeeded, 1);
    assert!(simulator.bypass(ENV_A, user).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tab_separated_files_are_read() {
    let simulator = start(SimulatorConfig::default()).await;
    let user = Uuid::new_v4();
    let files = run_files(&format!("env\tuser\texpiry\n{ENV_A}\t{user}\t2d\n"));
    let outcome = run_to_end(run_config(&files, against(&simulator))).await;
    assert_eq!(outcome.summary.succeeded, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_and_until_defaults_fill_missing_columns_and_empty_cells() {
    let simulator = start(SimulatorConfig::default()).await;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let files = run_files(&format!("user,env\n{first},\n{second},{ENV_B}\n"));
    let mut config = run_config(&files, against(&simulator));
    let default_until = config.rules.run_start + chrono::Duration::hours(6);
    config.rules.default_environment = Some(ENV_A);
    config.rules.default_until = Some(("6h".to_owned(), default_until));
    let outcome = run_to_end(config).await;
    assert_eq!(outcome.summary.succeeded, 2);
    let expected = chrono::SubsecRound::trunc_subsecs(default_until, 3);
    assert_eq!(simulator.bypass(ENV_A, first), Some(expected));
    assert_eq!(simulator.bypass(ENV_B, second), Some(expected));
    let rows = read_results(&files.output);
    assert_eq!(
        column(&rows, "environment_id"),
        [ENV_A.to_string(), ENV_B.to_string()]
    );
    assert_eq!(column(&rows, "until"), ["", ""]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_columns_are_carried_through_after_the_fixed_ones() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&format!(
        "ticket,userId,environmentId,until,name\nINC-9,{},{ENV_A},8h,\"Lovelace, Ada\"\n",
        Uuid::new_v4()
    ));
    run_to_end(run_config(&files, against(&simulator))).await;
    let text = std::fs::read_to_string(&files.output).expect("results");
    let header = text.lines().next().unwrap_or_default();
    assert!(
        header.ends_with("error_message,completed_at,ticket,name"),
        "{header}"
    );
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "ticket"), ["INC-9"]);
    assert_eq!(column(&rows, "name"), ["Lovelace, Ada"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_without_a_user_column_stops_before_anything_is_sent() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&format!("env,until\n{ENV_A},8h\n"));
    let error = pingone_bypass::run::run(run_config(&files, against(&simulator)))
        .await
        .expect_err("no user column");
    assert!(error.nothing_sent());
    assert!(error.to_string().contains("no user column"), "{error}");
    assert!(!files.output.exists(), "a results file was written");
    assert_eq!(simulator.stats().total_puts(), 0);
}
