import { brandColor, clientName, supportPhone } from './config.js'
import Tickets from './Tickets.jsx'

export default function App() {
  return (
    <div className="app" style={{ '--brand': brandColor }}>
      <header className="header">
        <h1>{clientName}</h1>
        {supportPhone && (
          <a className="support" href={`tel:${supportPhone.replace(/[^+\d]/g, '')}`}>
            Support: {supportPhone}
          </a>
        )}
      </header>
      <main>
        <Tickets />
      </main>
    </div>
  )
}
