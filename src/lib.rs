//! grawa-train: gradient-weighted model averaging (GRAWA) and its baselines, one machine, several
//! workers. The binary `grawa-train` is a thin shell over this library (see `cli::run`).

pub mod algo;
pub mod alloc;
pub mod average;
pub mod bench;
pub mod buffer;
pub mod checkpoint;
pub mod cli;
pub mod comm;
pub mod config;
pub mod cuda;
pub mod data;
pub mod error;
pub mod eval_clock;
pub mod events;
pub mod flatness;
pub mod gpus;
pub mod link;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod optim;
pub mod pace;
pub mod progress;
pub mod provenance;
pub mod ranks;
pub mod report;
pub mod round;
pub mod schedule;
pub mod selftest;
pub mod tensorboard;
pub mod threads;
pub mod train;

pub use error::{Error, Result};
