//! The configuration, from an arbitrary file and environment: no input panics, and a
//! configuration that loads prints (`orderly config`) as TOML that loads back to the same.
//! The input is the file's text, then optionally a line `%%` and `ORDERLY_*=value` lines for
//! the environment.

#![no_main]

use libfuzzer_sys::fuzz_target;
use orderly::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, env) = text.split_once("\n%%\n").unwrap_or((text, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let Ok(config) = Config::from_toml(file, env) else {
        return;
    };
    let printed = config.to_redacted_toml();
    let again = Config::from_toml(&printed, Vec::new())
        .unwrap_or_else(|e| panic!("printed configuration does not load: {e}\n{printed}"));
    assert_eq!(
        again.to_redacted_toml(),
        printed,
        "printing is not faithful"
    );
});
