/**
 * The track a mediasoup producer carries. A track published here is its producer (same id).
 * A copy piped in from another node has the track's id too, except a copy pulled over a new
 * path while the old one still serves (a re-route): mediasoup ids are unique per router, so
 * that one gets a fresh id and names its track in appData.
 */
export function trackIdOf(producer: { id: string; appData: unknown }): string {
  const t = (producer.appData as { trackId?: unknown } | undefined)?.trackId;
  return typeof t === 'string' ? t : producer.id;
}
