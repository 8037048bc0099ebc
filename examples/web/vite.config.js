import { defineConfig, loadEnv } from 'vite'
import react from '@vitejs/plugin-react'

// Variables intelli passes in the build's process environment for every client.
// A build without them would produce a site that cannot talk to its Supabase
// project, so `vite build` refuses to run instead of shipping a broken bundle.
const REQUIRED_ENV = ['VITE_SUPABASE_URL', 'VITE_SUPABASE_ANON_KEY']

function requireBuildEnv(names) {
  return {
    name: 'intelli:require-build-env',
    apply: 'build',
    // `config` runs before anything is bundled or written, so a failed check
    // leaves an existing --outDir untouched.
    config(userConfig, { mode }) {
      // loadEnv reads .env files (if any) plus every VITE_* entry of
      // process.env (process.env wins) -- the same values Vite inlines into
      // import.meta.env. process.env is merged again so the check never
      // depends on .env files.
      const envDir = userConfig.envDir ?? userConfig.root ?? process.cwd()
      const env = {
        ...(envDir === false ? {} : loadEnv(mode, envDir, 'VITE_')),
        ...process.env,
      }
      const missing = names.filter((name) => !String(env[name] ?? '').trim())
      if (missing.length > 0) {
        const err = new Error(
          `Missing required build environment variable(s): ${missing.join(', ')}. ` +
            'intelli sets these in the environment of each per-client build ' +
            "(from the client's Supabase project); to build by hand, set them yourself, e.g. " +
            'VITE_SUPABASE_URL=https://<ref>.supabase.co VITE_SUPABASE_ANON_KEY=<anon key> npm run build',
        )
        // Vite prints util.inspect(err); without this it adds a stack trace into
        // the bundled vite.config.js that says nothing useful.
        err.stack = `Error: ${err.message}`
        throw err
      }
    },
  }
}

export default defineConfig({
  plugins: [react(), requireBuildEnv(REQUIRED_ENV)],
})
