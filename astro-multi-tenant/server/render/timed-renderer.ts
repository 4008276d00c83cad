import type { Renderer } from './astro-renderer.ts';

/**
 * The renderer with every render's duration observed (seconds, by view kind). Observes without
 * wrapping the render in another async function: no extra promise per request.
 */
export function timedRenderer(renderer: Renderer, observe: (viewKind: string, seconds: number) => void): Renderer {
  const timed = <T>(kind: string, started: number, rendering: Promise<T>): Promise<T> => {
    const done = () => observe(kind, (performance.now() - started) / 1000);
    rendering.then(done, done);
    return rendering;
  };
  return {
    render: (req, res, view) => timed(view.kind, performance.now(), renderer.render(req, res, view)),
    ...(renderer.renderCaptured ? { renderCaptured: (req, res, view) => timed(view.kind, performance.now(), renderer.renderCaptured!(req, res, view)) } : {}),
  };
}
