//! Troupe's actors: the runtime and the services it hosts.
//!
//! # Layout
//! - [`mesh`]: the runtime: membership (chitchat bridged to ractor_cluster), service groups
//!   with supervision and admission control, the router, entity placement.
//! - [`system`]: the runtime's own services (`ping`, `system`: health, actor listing, chaos).
//! - [`store`]: the SQL store (sqlx; SQLite or PostgreSQL) and its migrations.
//! - [`common`]: what several services share: the caller as owner-or-admin ([`common::Who`]),
//!   field validation.
//! - [`users`], [`auth`], `sessions`: identity services.
//! - [`sso`]: sign-in through OpenID Connect providers (authorization code + PKCE); opens
//!   normal sessions through `auth`.
//! - [`tasks`], [`todos`]: step-wise jobs with one actor per running task; todo lists.
//! - [`gatherings`]: the `events` service: events with a capacity, registration with a
//!   waitlist (one actor per event), each user's iCalendar.
//! - [`coaching`]: coaches with weekly schedules in their time zone, open slots, bookings
//!   (one actor per coach; never two bookings for one slot) and session notes.
//! - [`training`]: courses, lessons, enrolment and progress, assessments, certificates.
//! - [`engagement`]: points for activities (tracked, or earned from bus events), badges, a
//!   leaderboard, feedback and analytics.
//! - [`reminders`]: durable reminders: store-kept timers written with what they belong to,
//!   fired once by the node owning their shard, by a survivor when that node dies.
//! - [`hub`], [`chat`]: live connections (presence, delivery) and chat between contacts.
//! - [`events`]: domain events, the publisher services hold, the outbox and its delivery.
//! - [`notifications`]: consumes events: notification log, per-user notifications, email.
//! - [`images`]: sanitized image uploads kept in the store.
//! - [`metrics`]: names of the metrics recorded here.
//!
//! Dependencies point one way: protocols -> actors -> proto. Nothing here knows which
//! protocol a request came in on.
// Denied, not forbidden: `store::busy` alone calls SQLite's C API (a busy handler).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod chat;
pub mod coaching;
pub mod common;
pub mod engagement;
pub mod events;
pub mod gatherings;
pub mod hub;
pub mod images;
pub mod mesh;
pub mod metrics;
pub mod notifications;
pub mod reminders;
pub mod sessions;
pub mod sso;
pub mod store;
pub mod system;
pub mod tasks;
pub mod todos;
pub mod training;
pub mod users;
