//! The pipeline's steps: plan, invite, assign, remove. Each reads a message and the world
//! and returns follow-up messages; adapters (Functions, CLI) only move messages.

pub mod messages;
