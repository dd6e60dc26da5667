//! `ipfm station` settings from a TOML file, `IPFM_*` environment variables and
//! command-line flags, merged in that order (a later source wins key by key), then turned
//! into a validated [`StationConfig`].
//!
//! Range checks live in [`StationConfig::validate`] and the encoder's config; this module
//! only parses, merges and converts units.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipfm_encoder::{EncoderConfig, Rendition};
use serde::Deserialize;

use crate::net::ipns::{DelegatedEndpoint, IpnsPublishConfig};
use crate::station::{StationConfig, StationError};

/// Where the gateway listens unless configured otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Station(#[from] StationError),
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not one of text, json")),
        }
    }
}

/// One rendition: `{ name = "midfi", bitrate = 96000 }`, or `midfi:96000` in env/flags.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenditionSetting {
    pub name: String,
    /// Bits per second.
    pub bitrate: u32,
}

/// Parses `name:bitrate[,name:bitrate…]`.
pub fn parse_renditions(text: &str) -> Result<Vec<RenditionSetting>, String> {
    text.split(',')
        .map(|item| {
            let (name, bitrate) = item
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("{item:?} is not name:bitrate"))?;
            let bitrate = bitrate
                .parse()
                .map_err(|_| format!("{bitrate:?} is not a bit rate in bits per second"))?;
            Ok(RenditionSetting {
                name: name.to_owned(),
                bitrate,
            })
        })
        .collect()
}

/// The `[station]` table: who the station is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationTable {
    /// Shown by the player and the dashboard, and in `nowplaying.json` and
    /// `/api/v1/status` (`station.name`; env `IPFM_STATION_NAME`, flag `--name`).
    pub name: Option<String>,
}

/// The `[ipns]` table: how the station's IPNS records reach the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpnsTable {
    /// At most one DHT put (and delegated PUT) per this many seconds; the newest record
    /// goes out at the next slot (`ipns.dht_put_interval_secs`, env
    /// `IPFM_IPNS_DHT_PUT_INTERVAL_SECS`, flag `--ipns-dht-put-interval-secs`; ≥ 1, default 60).
    pub dht_put_interval_secs: Option<u64>,
    /// Delegated routing endpoints (`http[s]://host[:port][/prefix]`) to `PUT
    /// /routing/v1/ipns/{name}` to (env `IPFM_IPNS_DELEGATED_ROUTING`, comma-separated;
    /// flag `--delegated-routing`, repeatable).
    pub delegated_routing: Option<Vec<String>>,
}

/// Every station setting; `None` = not given by this source.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationSettings {
    /// `[station]`: the name.
    #[serde(default)]
    pub station: StationTable,
    /// `[ipns]`: DHT put rate, delegated routing.
    #[serde(default)]
    pub ipns: IpnsTable,
    pub music: Option<PathBuf>,
    pub jingles: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub api_listen: Option<SocketAddr>,
    pub window: Option<usize>,
    pub retention_secs: Option<u64>,
    pub segment_seconds: Option<f64>,
    pub renditions: Option<Vec<RenditionSetting>>,
    pub ipns_ttl_secs: Option<u64>,
    pub ipns_validity_hours: Option<u64>,
    /// Seconds.
    pub crossfade: Option<f64>,
    pub target_lufs: Option<f64>,
    pub jingle_every: Option<u32>,
    pub log_format: Option<LogFormat>,
}

/// Settings ready to run with.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub station: StationConfig,
    /// For [`crate::station::network::P2pConfig::ipns`].
    pub ipns: IpnsPublishConfig,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
}

impl StationSettings {
    /// Parses a TOML document; unknown keys are errors (a typo must not be ignored).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads and parses the TOML file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::File {
            path: path.into(),
            message,
        })
    }

    /// The `IPFM_<KEY>` variables among `vars` (e.g. `IPFM_WINDOW=30`). Other variables,
    /// `IPFM_REPO` included, are ignored.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut settings = StationSettings::default();
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("IPFM_") else {
                continue;
            };
            let invalid = |message: String| ConfigError::Invalid {
                field: name.clone(),
                message,
            };
            match key {
                "STATION_NAME" => settings.station.name = Some(value),
                "IPNS_DHT_PUT_INTERVAL_SECS" => {
                    settings.ipns.dht_put_interval_secs = Some(parse(&value).map_err(invalid)?)
                }
                "IPNS_DELEGATED_ROUTING" => {
                    settings.ipns.delegated_routing = Some(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|e| !e.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    )
                }
                "MUSIC" => settings.music = Some(value.into()),
                "JINGLES" => settings.jingles = Some(value.into()),
                "LISTEN" => settings.listen = Some(parse(&value).map_err(invalid)?),
                "API_LISTEN" => settings.api_listen = Some(parse(&value).map_err(invalid)?),
                "WINDOW" => settings.window = Some(parse(&value).map_err(invalid)?),
                "RETENTION_SECS" => settings.retention_secs = Some(parse(&value).map_err(invalid)?),
                "SEGMENT_SECONDS" => {
                    settings.segment_seconds = Some(parse(&value).map_err(invalid)?)
                }
                "RENDITIONS" => {
                    settings.renditions = Some(parse_renditions(&value).map_err(invalid)?)
                }
                "IPNS_TTL_SECS" => settings.ipns_ttl_secs = Some(parse(&value).map_err(invalid)?),
                "IPNS_VALIDITY_HOURS" => {
                    settings.ipns_validity_hours = Some(parse(&value).map_err(invalid)?)
                }
                "CROSSFADE" => settings.crossfade = Some(parse(&value).map_err(invalid)?),
                "TARGET_LUFS" => settings.target_lufs = Some(parse(&value).map_err(invalid)?),
                "JINGLE_EVERY" => settings.jingle_every = Some(parse(&value).map_err(invalid)?),
                "LOG_FORMAT" => settings.log_format = Some(value.parse().map_err(invalid)?),
                _ => {}
            }
        }
        Ok(settings)
    }

    /// `self` with every key that `over` sets taken from `over`.
    pub fn merged(self, over: StationSettings) -> StationSettings {
        StationSettings {
            station: StationTable {
                name: over.station.name.or(self.station.name),
            },
            ipns: IpnsTable {
                dht_put_interval_secs: over
                    .ipns
                    .dht_put_interval_secs
                    .or(self.ipns.dht_put_interval_secs),
                delegated_routing: over.ipns.delegated_routing.or(self.ipns.delegated_routing),
            },
            music: over.music.or(self.music),
            jingles: over.jingles.or(self.jingles),
            listen: over.listen.or(self.listen),
            api_listen: over.api_listen.or(self.api_listen),
            window: over.window.or(self.window),
            retention_secs: over.retention_secs.or(self.retention_secs),
            segment_seconds: over.segment_seconds.or(self.segment_seconds),
            renditions: over.renditions.or(self.renditions),
            ipns_ttl_secs: over.ipns_ttl_secs.or(self.ipns_ttl_secs),
            ipns_validity_hours: over.ipns_validity_hours.or(self.ipns_validity_hours),
            crossfade: over.crossfade.or(self.crossfade),
            target_lufs: over.target_lufs.or(self.target_lufs),
            jingle_every: over.jingle_every.or(self.jingle_every),
            log_format: over.log_format.or(self.log_format),
        }
    }

    /// Fills in the defaults, converts units and validates.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        let station_defaults = StationConfig::default();
        let encoder_defaults = EncoderConfig::default();
        let encoder = EncoderConfig {
            renditions: match &self.renditions {
                Some(list) => list
                    .iter()
                    .map(|r| Rendition::new(r.name.clone(), r.bitrate))
                    .collect(),
                None => encoder_defaults.renditions.clone(),
            },
            segment_target: seconds("segment_seconds", self.segment_seconds)?
                .unwrap_or(encoder_defaults.segment_target),
            crossfade: seconds("crossfade", self.crossfade)?.unwrap_or(encoder_defaults.crossfade),
            target_lufs: self.target_lufs.unwrap_or(encoder_defaults.target_lufs),
            jingle_every: self.jingle_every.unwrap_or(encoder_defaults.jingle_every),
            ..encoder_defaults
        };
        let station = StationConfig {
            music: self.music.clone(),
            jingles: self.jingles.clone(),
            encoder,
            window: self.window.unwrap_or(station_defaults.window),
            retention: self
                .retention_secs
                .map_or(station_defaults.retention, Duration::from_secs),
            ipns_ttl: self.ipns_ttl_secs.map(Duration::from_secs),
            ipns_validity: self
                .ipns_validity_hours
                .map_or(station_defaults.ipns_validity, |hours| {
                    Duration::from_secs(hours.saturating_mul(3600))
                }),
            api_listen: self.api_listen,
            name: self
                .station
                .name
                .clone()
                .unwrap_or_else(|| station_defaults.name.clone()),
            ..station_defaults
        };
        station.validate()?;
        let listen = match self.listen {
            Some(listen) => listen,
            None => DEFAULT_LISTEN.parse().map_err(|_| ConfigError::Invalid {
                field: "listen".into(),
                message: "bad built-in default".into(),
            })?,
        };
        Ok(Resolved {
            station,
            ipns: self.ipns.resolve()?,
            listen,
            log_format: self.log_format.unwrap_or_default(),
        })
    }
}

impl IpnsTable {
    fn resolve(&self) -> Result<IpnsPublishConfig, ConfigError> {
        let defaults = IpnsPublishConfig::default();
        let dht_put_interval = match self.dht_put_interval_secs {
            Some(0) => {
                return Err(ConfigError::Invalid {
                    field: "ipns.dht_put_interval_secs".into(),
                    message: "must be at least 1 second".into(),
                })
            }
            Some(secs) => Duration::from_secs(secs),
            None => defaults.dht_put_interval,
        };
        let delegated_routing = self
            .delegated_routing
            .iter()
            .flatten()
            .map(|endpoint| {
                endpoint
                    .parse::<DelegatedEndpoint>()
                    .map_err(|e| ConfigError::Invalid {
                        field: "ipns.delegated_routing".into(),
                        message: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(IpnsPublishConfig {
            dht_put_interval,
            delegated_routing,
        })
    }
}

fn parse<T: FromStr>(value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e| format!("{value:?}: {e}"))
}

fn seconds(field: &str, value: Option<f64>) -> Result<Option<Duration>, ConfigError> {
    value
        .map(|v| {
            Duration::try_from_secs_f64(v).map_err(|_| ConfigError::Invalid {
                field: field.into(),
                message: format!("{v} is not a non-negative number of seconds"),
            })
        })
        .transpose()
}
