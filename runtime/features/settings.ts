// The settings every feature reads while running; config/set replaces them (features/live-config.ts).
import type { Config } from '../config/index.ts';
import type { Topics } from '../mqtt/topics.ts';

/** The accepted configuration (as started, then as changed by config/set) and the topic tree it implies. */
export interface Settings {
  config: Config;
  topics: Topics;
}
