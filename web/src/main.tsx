import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { restoreSession, SessionProvider } from './api/session';
import { App } from './App';
import './styles.css';

const root = createRoot(document.getElementById('root')!);
void restoreSession().then((initial) =>
  root.render(
    <StrictMode>
      <SessionProvider initial={initial}>
        <App />
      </SessionProvider>
    </StrictMode>,
  ),
);
