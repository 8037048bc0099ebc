import { useEffect, useState } from 'react'
import { supabase } from './supabase.js'

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })

function formatWhen(value) {
  if (!value) return 'Not scheduled'
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? value : dateFormat.format(date)
}

export default function Tickets() {
  // { state: 'loading' } | { state: 'error', message } | { state: 'ready', tickets }
  const [result, setResult] = useState({ state: 'loading' })
  const [reload, setReload] = useState(0)

  useEffect(() => {
    let cancelled = false
    setResult({ state: 'loading' })
    supabase
      .from('tickets')
      .select('id, title, status:ticket_statuses(label), scheduled_at')
      .order('scheduled_at', { ascending: true })
      .then(({ data, error }) => {
        if (cancelled) return
        if (error) setResult({ state: 'error', message: error.message })
        else setResult({ state: 'ready', tickets: data ?? [] })
      })
      .catch((err) => {
        if (!cancelled) setResult({ state: 'error', message: String(err?.message ?? err) })
      })
    return () => {
      cancelled = true
    }
  }, [reload])

  return (
    <section className="tickets">
      <h2>Tickets</h2>
      {result.state === 'loading' && <p className="muted" role="status">Loading tickets…</p>}
      {result.state === 'error' && (
        <div className="error" role="alert">
          <p>Could not load tickets: {result.message}</p>
          <button type="button" onClick={() => setReload((n) => n + 1)}>
            Try again
          </button>
        </div>
      )}
      {result.state === 'ready' && result.tickets.length === 0 && (
        <p className="muted">No tickets yet.</p>
      )}
      {result.state === 'ready' && result.tickets.length > 0 && (
        <ul className="ticket-list">
          {result.tickets.map((t) => (
            <li key={t.id} className="ticket">
              <span className="title">{t.title}</span>
              <span className="status">{t.status?.label ?? 'Unknown'}</span>
              <time dateTime={t.scheduled_at ?? undefined}>{formatWhen(t.scheduled_at)}</time>
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}
