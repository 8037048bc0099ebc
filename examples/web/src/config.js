// Per-client branding, inlined at build time. VITE_CLIENT_NAME comes from
// intelli; the rest are optional extras from the client's fleet file.
export const clientName = import.meta.env.VITE_CLIENT_NAME || 'Client'
export const brandColor = import.meta.env.VITE_BRAND_COLOR || '#2f6feb'
export const supportPhone = import.meta.env.VITE_SUPPORT_PHONE || ''
