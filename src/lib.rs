//! hienergy-mcp: an MCP server with one tool, `add_contact`, that adds a
//! contact to HiEnergy.
//!
//! Data walks one way: [`config`] → [`server`] (the tool) → [`contact`]
//! (validate, normalise) → [`dedupe`] → [`hienergy`] (HTTP) → [`answer`]
//! (HiEnergy's answer read) → [`outcome`] (result or error). [`stdio`] runs the server; [`schema`] makes the tool's
//! schemas portable. [`setup`] is the `setup` subcommand: it writes this
//! server into an MCP client's config file and never runs while serving.

pub mod answer;
pub mod config;
pub mod contact;
pub mod dedupe;
pub mod hienergy;
pub mod outcome;
pub mod schema;
pub mod server;
pub mod setup;
pub mod stdio;
