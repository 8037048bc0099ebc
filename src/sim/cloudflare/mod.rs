//! Simulated Cloudflare v4 API: Pages projects, direct upload, deployments, domains, DNS.
