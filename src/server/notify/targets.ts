/** Where build notifications go: the targets are rows of the store (`src/store/notify-targets.ts`). */
export {
  NOTIFY_EVENTS,
  addNotifyTarget,
  listNotifyTargets,
  removeNotifyTarget,
} from '../../store/notify-targets.js';
export type { NewNotifyTarget, NotifyEvent, NotifyTarget } from '../../store/notify-targets.js';
