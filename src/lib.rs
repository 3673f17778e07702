//! hienergy-mcp: an MCP server whose tools find advertisers and contacts in
//! HiEnergy and add contacts to it.
//!
//! Data walks one way: [`config`] → [`server`] → [`tools`] (one file per
//! tool) → [`contact`]
//! (validate, normalise) → [`dedupe`] → [`hienergy`] (HTTP) → [`answer`]
//! (HiEnergy's answer read) → [`outcome`] (result or error). [`stdio`] runs
//! the server on rmcp's stdio transport; [`schema`] makes the tool's
//! schemas portable; [`budget`] is HiEnergy's rate limit as [`hienergy`]
//! reads it off each answer, which `add_contacts` paces itself by. The read
//! tools (`search_advertisers`, `search_contacts`) GET through [`hienergy`]
//! and read rows with [`rows`] (every shape HiEnergy documents); [`existing`]
//! tells whether a contact is already in HiEnergy; [`resolve`] turns an
//! advertiser's name into one record, asking the user through [`elicit`]
//! when several fit. [`setup`] is the
//! `setup` subcommand: it writes this server into an MCP client's config
//! file and never runs while serving.

pub mod answer;
pub mod budget;
pub mod config;
pub mod contact;
pub mod dedupe;
pub mod elicit;
pub mod existing;
pub mod hienergy;
pub mod outcome;
pub mod resolve;
pub mod rows;
pub mod schema;
pub mod server;
pub mod setup;
pub mod stdio;
pub mod tools;
