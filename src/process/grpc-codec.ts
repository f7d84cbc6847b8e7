/**
 * The few protobuf messages stigmer exchanges, encoded with protobufjs's low-level Writer/Reader
 * (its `minimal` build: ~8 ms to import, no reflection, no .proto parsing at start). Package,
 * service and field numbers are those of the upstream protos:
 *
 *   package grpc.health.v1;                              (grpc/grpc doc/health-checking.md)
 *   message HealthCheckRequest  { string service = 1; }
 *   message HealthCheckResponse { ServingStatus status = 1; }
 *   enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
 *   service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
 *
 *   package temporal.api.workflowservice.v1;             (temporalio/api)
 *   message DescribeNamespaceRequest  { string namespace = 1; string id = 2; }
 *   message DescribeNamespaceResponse { temporal.api.namespace.v1.NamespaceInfo namespace_info = 1; ... }
 *   package temporal.api.namespace.v1;
 *   message NamespaceInfo { string name = 1; temporal.api.enums.v1.NamespaceState state = 2; ...; string id = 6; }
 *   enum NamespaceState { UNSPECIFIED = 0; REGISTERED = 1; DEPRECATED = 2; DELETED = 3; }
 *   service WorkflowService { rpc DescribeNamespace(...); rpc GetSystemInfo(GetSystemInfoRequest {}) ...; }
 */
import { createRequire } from 'node:module';

interface Writer {
  uint32(v: number): Writer;
  string(v: string): Writer;
  fork(): Writer;
  ldelim(): Writer;
  finish(): Uint8Array;
}
interface Reader {
  pos: number;
  len: number;
  uint32(): number;
  int32(): number;
  string(): string;
  skipType(wireType: number): Reader;
}
interface Minimal {
  Writer: { create(): Writer };
  Reader: { create(buf: Uint8Array): Reader };
}

let pb: Minimal | undefined;
// CommonJS; required synchronously so the codecs stay plain functions. The package's own one-file
// build of `protobufjs/minimal` (dist/minimal/protobuf.min.js, the same Writer/Reader): one file to
// load instead of ~20 (protobufjs/src/* and its @protobufjs/* helpers), ~3x faster to require here.
const minimal = (): Minimal => (pb ??= createRequire(import.meta.url)('protobufjs/dist/minimal/protobuf.min.js') as Minimal);

export const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
export const DESCRIBE_NAMESPACE = '/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace';
export const GET_SYSTEM_INFO = '/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo';
/** The service whose health means a Temporal frontend serves (the overall "" is SERVING at once). */
export const WORKFLOW_SERVICE = 'temporal.api.workflowservice.v1.WorkflowService';

export const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;
export type ServingStatus = (typeof SERVING_STATUS)[number];

export const NAMESPACE_STATE = ['UNSPECIFIED', 'REGISTERED', 'DEPRECATED', 'DELETED'] as const;
export type NamespaceState = (typeof NAMESPACE_STATE)[number];

/** A message whose only field 1 is a string (HealthCheckRequest, DescribeNamespaceRequest). */
export function encodeString1(value: string): Buffer {
  const w = minimal().Writer.create();
  if (value !== '') w.uint32((1 << 3) | 2).string(value);
  return Buffer.from(w.finish());
}

/** An empty message (GetSystemInfoRequest). */
export function encodeEmpty(): Buffer {
  return Buffer.alloc(0);
}

export function decodeHealthResponse(buf: Buffer): ServingStatus {
  const r = minimal().Reader.create(buf);
  let status = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 0) status = r.int32();
    else r.skipType(tag & 7);
  }
  return SERVING_STATUS[status] ?? 'UNKNOWN';
}

export interface NamespaceInfo {
  name: string;
  state: NamespaceState;
  id: string;
}

export function decodeDescribeNamespaceResponse(buf: Buffer): NamespaceInfo {
  const r = minimal().Reader.create(buf);
  const info: NamespaceInfo = { name: '', state: 'UNSPECIFIED', id: '' };
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 !== 1 || (tag & 7) !== 2) {
      r.skipType(tag & 7);
      continue;
    }
    const end = r.uint32() + r.pos;
    while (r.pos < end) {
      const t = r.uint32();
      const field = t >>> 3;
      if (field === 1 && (t & 7) === 2) info.name = r.string();
      else if (field === 2 && (t & 7) === 0) info.state = NAMESPACE_STATE[r.int32()] ?? 'UNSPECIFIED';
      else if (field === 6 && (t & 7) === 2) info.id = r.string();
      else r.skipType(t & 7);
    }
  }
  return info;
}

/** Anything: the caller only cares that the call succeeded (GetSystemInfoResponse). */
export function decodeIgnored(buf: Buffer): Buffer {
  return buf;
}
