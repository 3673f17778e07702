//! A fake HiEnergy that keeps what was POSTed and lists it back, as
//! HiEnergy does, for the tests and the benchmark: `POST /contacts/add`
//! answers 201 with the contact and a new id (after the POST delay, but
//! kept at once, as a server that finishes the work after the client gave
//! up); `GET /contacts?email=&advertiser_id=` lists the kept contacts with
//! that email (any case) and advertiser, flat rows with string ids (after
//! the GET delay). With `keep: false` a POST is answered but not kept: the
//! contact is never listed (as one rated below 1).

// Shared by the test crate and the bench, which each use part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const CONTACTS_PATH: &str = "/api/v1/contacts/add";
pub const CONTACTS_LIST_PATH: &str = "/api/v1/contacts";

pub struct Kept {
    contacts: Mutex<Vec<Value>>,
    keep: bool,
    post_delay_us: AtomicU64,
    get_delay_us: AtomicU64,
    posts: AtomicU64,
    gets: AtomicU64,
}

impl Kept {
    pub fn len(&self) -> usize {
        self.contacts.lock().unwrap().len()
    }

    /// POSTs and GETs answered so far.
    pub fn requests(&self) -> (u64, u64) {
        (
            self.posts.load(Ordering::SeqCst),
            self.gets.load(Ordering::SeqCst),
        )
    }

    pub fn set_delays(&self, post: Duration, get: Duration) {
        self.post_delay_us
            .store(post.as_micros() as u64, Ordering::SeqCst);
        self.get_delay_us
            .store(get.as_micros() as u64, Ordering::SeqCst);
    }
}

struct KeptPost(Arc<Kept>);
struct KeptList(Arc<Kept>);

impl Respond for KeptPost {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.posts.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let mut contact = body["contact"].clone();
        let mut kept = self.0.contacts.lock().unwrap();
        contact["id"] = json!(1000 + kept.len() + 1);
        if self.0.keep {
            kept.push(contact.clone());
        }
        ResponseTemplate::new(201)
            .set_body_json(json!({ "data": contact }))
            .set_delay(Duration::from_micros(
                self.0.post_delay_us.load(Ordering::SeqCst),
            ))
    }
}

impl Respond for KeptList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.gets.fetch_add(1, Ordering::SeqCst);
        let query: std::collections::HashMap<String, String> =
            request.url.query_pairs().into_owned().collect();
        let email = query.get("email").map(|e| e.trim().to_ascii_lowercase());
        let advertiser = query.get("advertiser_id");
        let rows: Vec<Value> = self
            .0
            .contacts
            .lock()
            .unwrap()
            .iter()
            .filter(|c| {
                email.as_deref().is_none_or(|e| {
                    c["email"].as_str().unwrap_or_default().to_ascii_lowercase() == e
                }) && advertiser
                    .is_none_or(|a| a.parse::<u64>().ok() == c["advertiser_id"].as_u64())
            })
            .map(|c| {
                let mut row = c.clone();
                row["id"] = json!(c["id"].to_string());
                row
            })
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(
                json!({"data": rows, "meta": {"current_page": 1, "next_page": null, "per_page": 50}}),
            )
            .set_delay(Duration::from_micros(
                self.0.get_delay_us.load(Ordering::SeqCst),
            ))
    }
}

/// Mounts a [`Kept`] fake on `server` whose POSTs answer after `delay`
/// and whose GETs at once, and returns it.
pub async fn mount_kept(server: &MockServer, delay: Duration, keep: bool) -> Arc<Kept> {
    let kept = Arc::new(Kept {
        contacts: Mutex::new(Vec::new()),
        keep,
        post_delay_us: AtomicU64::new(delay.as_micros() as u64),
        get_delay_us: AtomicU64::new(0),
        posts: AtomicU64::new(0),
        gets: AtomicU64::new(0),
    });
    Mock::given(method("POST"))
        .and(path(CONTACTS_PATH))
        .respond_with(KeptPost(kept.clone()))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(CONTACTS_LIST_PATH))
        .respond_with(KeptList(kept.clone()))
        .mount(server)
        .await;
    kept
}
