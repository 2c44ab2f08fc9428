import { z } from 'zod';
import { NodeCallError, type NodeHandlers } from '../nodeChannel.js';

// What edge nodes ask each other to carry a room's media (NodeChannel methods). The node
// that needs a producer (the far node) asks the node that has it (the origin): link (one
// pipe transport pair per room and node pair), pipe (one producer across the link), unpipe,
// unlink; the origin tells the far node when a piped producer pauses, resumes or closes.
// Data producers (SCTP) travel the same links: hasData (which node publishes it), pipeData,
// unpipeData, dataClosed.

const id = z.string().min(1).max(128);
const srtp = z.object({ cryptoSuite: z.string().min(1).max(64), keyBase64: z.string().min(1).max(256) }).strict();
const tuple = { ip: z.string().min(1).max(64), port: z.number().int().min(1).max(65535), srtp };
/**
 * The sender's id of its end of the link: a message for an end that is no longer there (the
 * link was closed and made again meanwhile, messages crossing) is dropped, not applied to
 * the new one.
 */
const link = z.string().min(1).max(64);

export const MEDIA_SCHEMAS = {
  'media.link': z.object({ room: id, link, ...tuple }).strict(),
  /** `via`: the path from the origin up to (not including) the node asked; empty: it is the origin. */
  'media.pipe': z.object({ room: id, link, producerId: id, via: z.array(id).max(8) }).strict(),
  'media.unpipe': z.object({ room: id, link, producerId: id }).strict(),
  'media.unlink': z.object({ room: id, link }).strict(),
  /** The highest spatial layer the sender's subscribers need of a producer (-1: none). */
  'media.demand': z.object({ room: id, link, producerId: id, layer: z.number().int().min(-1).max(15) }).strict(),
  /** closed 'producer': its publisher closed it; 'upstream': a hop before the sender lost it (re-route). */
  'media.producerState': z
    .object({ room: id, link, producerId: id, state: z.enum(['paused', 'resumed', 'closed']), reason: z.enum(['producer', 'upstream']).optional() })
    .strict(),
  /** Whether the asked node publishes this data producer (a far node looking for its origin). */
  'media.hasData': z.object({ room: id, dataProducerId: id }).strict(),
  /** A data producer (SCTP) across the link, as media.pipe for producers. */
  'media.pipeData': z.object({ room: id, link, dataProducerId: id, via: z.array(id).max(8) }).strict(),
  'media.unpipeData': z.object({ room: id, link, dataProducerId: id }).strict(),
  /** The sender's data producer closed (its publisher, or a hop before lost it). */
  'media.dataClosed': z.object({ room: id, link, dataProducerId: id }).strict(),
} as const;

type In<K extends keyof typeof MEDIA_SCHEMAS> = z.infer<(typeof MEDIA_SCHEMAS)[K]>;
export type SrtpParams = z.infer<typeof srtp>;

export interface PipedProducer {
  kind: 'audio' | 'video';
  /** The origin's pipe consumer's rtpParameters: what the far node produces with. */
  rtpParameters: unknown;
  paused: boolean;
  source: string;
  publisherSid: string;
  publisherIdentity: string;
}

export interface PipedDataProducer {
  /** The origin's pipe data consumer's: what the far node produces with. */
  sctpStreamParameters: unknown;
  label: string;
  protocol: string;
  publisherSid: string;
  publisherIdentity: string;
}

export interface MediaMethods {
  'media.link': { req: In<'media.link'>; res: { link: string; ip: string; port: number; srtp: SrtpParams } };
  'media.pipe': { req: In<'media.pipe'>; res: PipedProducer };
  'media.unpipe': { req: In<'media.unpipe'>; res: Record<string, never> };
  'media.unlink': { req: In<'media.unlink'>; res: Record<string, never> };
  'media.producerState': { req: In<'media.producerState'>; res: Record<string, never> };
  'media.demand': { req: In<'media.demand'>; res: Record<string, never> };
  'media.hasData': { req: In<'media.hasData'>; res: { has: boolean } };
  'media.pipeData': { req: In<'media.pipeData'>; res: PipedDataProducer };
  'media.unpipeData': { req: In<'media.unpipeData'>; res: Record<string, never> };
  'media.dataClosed': { req: In<'media.dataClosed'>; res: Record<string, never> };
}

/** A node without an SFU (or outside a cluster) has no media to carry: every call is not_found. */
export function refuseMedia(): NodeHandlers<MediaMethods> {
  const no = async (): Promise<never> => {
    throw new NodeCallError('not_found', 'this node has no SFU');
  };
  return {
    'media.link': no,
    'media.pipe': no,
    'media.unpipe': no,
    'media.unlink': no,
    'media.producerState': no,
    'media.demand': no,
    'media.hasData': no,
    'media.pipeData': no,
    'media.unpipeData': no,
    'media.dataClosed': no,
  };
}
