//! Station settings: TOML file < `IPFM_*` environment < flags, and validation errors
//! that name the field.

use std::time::Duration;

use ipfm_node::config::{ConfigError, LogFormat, RenditionSetting, StationSettings, StationTable};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const FILE: &str = r#"
music = "/srv/music"
listen = "0.0.0.0:8080"
api_listen = "127.0.0.1:9090"
window = 10
retention_secs = 120
segment_seconds = 4.0
crossfade = 2.5
target_lufs = -14.0
log_format = "json"
renditions = [{ name = "lofi", bitrate = 48000 }, { name = "hifi", bitrate = 160000 }]
"#;

#[test]
fn file_then_env_then_flags() {
    let file = StationSettings::from_toml(FILE).unwrap();
    let environment = StationSettings::from_env(env(&[
        ("IPFM_WINDOW", "12"),
        ("IPFM_RETENTION_SECS", "300"),
        ("IPFM_REPO", "/somewhere"), // not a station setting: ignored
        ("HOME", "/root"),
    ]))
    .unwrap();
    let flags = StationSettings {
        window: Some(15),
        ..StationSettings::default()
    };
    let resolved = file.merged(environment).merged(flags).resolve().unwrap();
    let station = &resolved.station;
    assert_eq!(station.window, 15, "flags beat env and file");
    assert_eq!(
        station.retention,
        Duration::from_secs(300),
        "env beats file"
    );
    assert_eq!(station.music.as_deref(), Some("/srv/music".as_ref()));
    assert_eq!(resolved.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(station.api_listen, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(station.encoder.segment_target, Duration::from_secs(4));
    assert_eq!(station.encoder.crossfade, Duration::from_millis(2500));
    assert_eq!(station.encoder.target_lufs, -14.0);
    let names: Vec<_> = station
        .encoder
        .renditions
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["lofi", "hifi"]);
    assert_eq!(resolved.log_format, LogFormat::Json);
}

#[test]
fn nothing_given_means_the_defaults() {
    let resolved = StationSettings::default().resolve().unwrap();
    assert_eq!(resolved.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(resolved.station.window, 20);
    assert_eq!(resolved.station.retention, Duration::from_secs(600));
    assert_eq!(resolved.station.api_listen, None);
    assert_eq!(resolved.log_format, LogFormat::Text);
}

#[test]
fn env_renditions_and_log_format_parse() {
    let settings = StationSettings::from_env(env(&[
        ("IPFM_RENDITIONS", "a:64000, b:128000"),
        ("IPFM_LOG_FORMAT", "json"),
    ]))
    .unwrap();
    assert_eq!(
        settings.renditions.unwrap(),
        [
            RenditionSetting {
                name: "a".into(),
                bitrate: 64_000
            },
            RenditionSetting {
                name: "b".into(),
                bitrate: 128_000
            },
        ]
    );
    assert_eq!(settings.log_format, Some(LogFormat::Json));
}

#[test]
fn an_out_of_range_value_names_the_field_and_range() {
    let error = StationSettings::from_toml("window = 1")
        .unwrap()
        .resolve()
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("window"), "{message}");
    assert!(message.contains("3–1000"), "{message}");
}

#[test]
fn an_unparsable_env_value_names_the_variable() {
    let error = StationSettings::from_env(env(&[("IPFM_WINDOW", "many")])).unwrap_err();
    assert!(matches!(&error, ConfigError::Invalid { field, .. } if field == "IPFM_WINDOW"));
}

#[test]
fn an_unknown_or_mistyped_file_key_is_an_error_naming_it() {
    let unknown = StationSettings::from_toml("windw = 10").unwrap_err();
    assert!(unknown.contains("windw"), "{unknown}");
    let mistyped = StationSettings::from_toml("window = \"ten\"").unwrap_err();
    assert!(mistyped.contains("window"), "{mistyped}");
    let negative = StationSettings::from_toml("crossfade = -1.0")
        .unwrap()
        .resolve()
        .unwrap_err();
    assert!(negative.to_string().contains("crossfade"), "{negative}");
}

#[test]
fn the_station_name_comes_from_the_station_table_env_or_flag() {
    let defaults = StationSettings::default().resolve().unwrap();
    assert_eq!(defaults.station.name, "ipfm station");

    let file =
        StationSettings::from_toml("window = 10\n[station]\nname = \"Radio Fichier\"\n").unwrap();
    assert_eq!(file.resolve().unwrap().station.name, "Radio Fichier");
    let environment =
        StationSettings::from_env(env(&[("IPFM_STATION_NAME", "Radio Umwelt")])).unwrap();
    let from_env = file.clone().merged(environment.clone()).resolve().unwrap();
    assert_eq!(from_env.station.name, "Radio Umwelt", "env beats file");
    let flags = StationSettings {
        station: StationTable {
            name: Some("Radio Flag 📻".into()),
        },
        ..StationSettings::default()
    };
    let resolved = file.merged(environment).merged(flags).resolve().unwrap();
    assert_eq!(resolved.station.name, "Radio Flag 📻", "flags beat env");
    assert_eq!(resolved.station.window, 10, "other file keys are kept");

    let typo = StationSettings::from_toml("[station]\nnmae = \"x\"\n").unwrap_err();
    assert!(typo.contains("nmae"), "{typo}");
}

#[test]
fn a_bad_station_name_is_refused_naming_the_field() {
    let long = "x".repeat(101);
    for bad in ["", "   ", "tab\there", "line\nbreak", long.as_str()] {
        let settings = StationSettings {
            station: StationTable {
                name: Some(bad.to_owned()),
            },
            ..StationSettings::default()
        };
        let message = settings.resolve().unwrap_err().to_string();
        assert!(message.contains("station.name"), "{bad:?}: {message}");
        assert!(message.contains("1–100"), "{bad:?}: {message}");
    }
    // 100 characters (not bytes) is the limit.
    let settings = StationSettings {
        station: StationTable {
            name: Some("é".repeat(100)),
        },
        ..StationSettings::default()
    };
    assert_eq!(
        settings.resolve().unwrap().station.name.chars().count(),
        100
    );
}
