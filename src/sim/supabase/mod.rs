//! Simulated Supabase Management API and per-project Storage API.
