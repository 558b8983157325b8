//! No arithmetic on what the admin writes can panic: every duration flag has an upper bound and
//! an expiry that no date can hold is an error naming the rule, on the command line and in a
//! row, through the binary.

use crate::support::{ENV_A, column, read_results, run_files, stderr};

fn pingone_bypass(args: &[&str]) -> std::process::Command {
    let mut command = crate::support::binary_blocking();
    command.args(args);
    command
}

#[test]
fn every_duration_flag_past_its_bound_is_exit_2_naming_the_bound() {
    let files = run_files(&format!(
        "env,user,until\n{ENV_A},{},8h\n",
        uuid::Uuid::new_v4()
    ));
    let input = files.input.display().to_string();
    for (flag, value, bound) in [
        ("--max-window", "300000y", "366d"),
        ("--max-window", "367d", "366d"),
        ("--timeout", "2h", "1h"),
        ("--resume-margin", "400d", "366d"),
        ("--outage-patience", "2d", "1day"),
    ] {
        let output = pingone_bypass(&["run", &input, "--dry-run", flag, value])
            .output()
            .expect("runs");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(bound),
            "{flag} {value}: {}",
            stderr(&output)
        );
    }
    let serve = pingone_bypass(&["serve", "--simulate", "--max-window", "300000y"])
        .output()
        .expect("runs");
    assert_eq!(serve.status.code(), Some(2), "{}", stderr(&serve));
}

#[test]
fn an_expiry_before_the_start_or_past_any_date_names_the_rule_it_breaks() {
    let files = run_files(&format!(
        "env,user,until\n{ENV_A},{},8h\n",
        uuid::Uuid::new_v4()
    ));
    let input = files.input.display().to_string();
    for (until, rule) in [
        ("-1h", "an expiry must be in the future"),
        ("+999999999h", "no later than --max-window"),
        ("300000y", "no later than --max-window"),
    ] {
        let output = pingone_bypass(&["run", &input, "--dry-run", "--overwrite", "--until", until])
            .output()
            .expect("runs");
        assert_eq!(
            output.status.code(),
            Some(2),
            "--until {until}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(rule),
            "--until {until}: {}",
            stderr(&output)
        );
    }

    let rows = run_files(&format!(
        "env,user,until\n{ENV_A},{},-1h\n{ENV_A},{},999999999h\n{ENV_A},{},8h\n",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    ));
    let output = pingone_bypass(&["run", &rows.input.display().to_string(), "--dry-run"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let results = read_results(&rows.plan);
    assert_eq!(
        column(&results, "status"),
        ["invalid", "invalid", "planned"]
    );
    assert!(
        results[0]["error_message"].contains("must be in the future"),
        "{:?}",
        results[0]
    );
    assert!(
        results[1]["error_message"].contains("--max-window"),
        "{:?}",
        results[1]
    );
}
