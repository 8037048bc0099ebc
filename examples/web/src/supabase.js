import { createClient } from '@supabase/supabase-js'

// Inlined at build time by Vite; intelli provides both for each client build
// (vite.config.js fails the build when either is missing).
const url = import.meta.env.VITE_SUPABASE_URL
const anonKey = import.meta.env.VITE_SUPABASE_ANON_KEY

export const supabase = createClient(url, anonKey)
