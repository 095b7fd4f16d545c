// config/set applied to the running parts, once the new configuration is on disk: models, cameras,
// schedules, retained state and, last, the topic tree.
import type { ChangeClassification, Config } from '../config/index.ts';
import type { ControlRouter } from '../control/router.ts';
import type { FacegateMqttClient } from '../mqtt/client.ts';
import type { Topics } from '../mqtt/topics.ts';
import type { AnalyzerConfig, LiveAnalyzer } from '../pipeline/analyzer.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import type { Logger } from '../util/log.ts';
import type { Cameras } from './cameras.ts';
import type { Settings } from './settings.ts';
import type { StatePublisher } from './state-publisher.ts';

export interface LiveConfigOptions {
  /** Replaced here: every feature reads the new configuration from it. */
  settings: Settings;
  analyzer: LiveAnalyzer;
  analyzerConfig: (config: Config) => AnalyzerConfig;
  topicsOf: (config: Config) => Topics;
  cameras: Cameras;
  scheduler: Scheduler;
  router: ControlRouter;
  mqtt: FacegateMqttClient;
  state: StatePublisher;
  log: Logger;
}

export class LiveConfig {
  constructor(private readonly opts: LiveConfigOptions) {}

  /** The live settings of `next` take effect here. */
  async apply(next: Config, changes: ChangeClassification): Promise<void> {
    const { opts } = this;
    opts.settings.config = next;
    const changed = (key: string) =>
      changes.live.some((path) => path === key || path.startsWith(`${key}.`) || path.startsWith(`${key}[`));
    if (changed('detection') || changed('presentationAttack'))
      await opts.analyzer.swap((current) => current.withConfig(opts.analyzerConfig(next)));
    opts.cameras.reconfigure();
    // A source reads fps and restart policy when it starts; restarting just that camera applies them.
    for (let i = 0; i < next.cameras.length; i++) {
      if (!changed(`cameras[${i}].fps`) && !changed(`cameras[${i}].restart`)) continue;
      await opts.cameras.restart(i);
    }
    if (changed('schedules')) opts.scheduler.reconfigure(next.schedules);
    opts.state.retained();
    if (changed('mqtt.baseTopic') || changed('homeAssistant.discoveryPrefix')) {
      // Once this request is answered: its response still goes where the operator is listening.
      void opts.router
        .idle()
        .then(() => this.moveTopics(opts.topicsOf(next)))
        .catch((e: Error) => opts.log.error(`moving to new topics failed: ${e.message}`));
    }
  }

  /** Listens on the new request topics first, so `online` on the new tree means commands work there. */
  private async moveTopics(topics: Topics): Promise<void> {
    const { opts } = this;
    await opts.router.setTopics(topics);
    if (topics.availability !== opts.settings.topics.availability) opts.mqtt.setTopics(topics);
    opts.settings.topics = topics;
    opts.state.retained();
    opts.state.state('running');
  }
}
