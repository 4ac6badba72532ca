// dmareplay as a library: `import { record, replayTrace, stateAt, ... } from 'dmareplay'`.
// The same functions the CLI calls (cli/ only parses arguments and prints), on a database path.
// 64-bit values are bigint throughout; events are the DmaEvent union of src/events/schema.ts.

// --- recording and replaying -------------------------------------------------------------------------
export { record, type RecordOptions, type RecordResult, type FindingSummary, DEFAULT_CHECKPOINT_EVERY } from './app/record.js';
export { replayTrace, replayTrace as replay, type ReplayReport } from './app/replay.js';
/** fold: apply events through the model and every checker (imported and in-memory traces); reexecute: re-run a simulated one and compare */
export { type FoldResult, type FoldOptions, type RecordedChunk, type ReplayOutcome } from './engine/replay.js';
export { reexecute } from './sim/replay.js';
export { JUDGE } from './check/index.js';
/** events held in memory as the chunks fold/seek consume: fold(chunksOf(events)) */
export { chunksOf } from './engine/chunks.js';
export { simulate } from './app/catalog.js';

// --- state at an event --------------------------------------------------------------------------------
export { type SeekResult } from './engine/seek.js';
export { stateAt, openStates, type StateQuery, type StateView, type TraceStates } from './app/state.js';
export { worldToPlain, stateHash, type PlainWorld } from './engine/snapshot.js';
export type { World, DeviceState } from './model/world.js';

// --- reading traces -----------------------------------------------------------------------------------
export { logTrace, eventsAt, type LogQuery } from './app/log.js';
export { traceStats, type TraceStats } from './app/stats.js';
export { explainFinding, type Explanation } from './app/explain.js';
export { runSql, type SqlResult } from './app/sql.js';
export { openDb, listTraces, getTrace, listFindings, readChunks, type TraceRow, type FindingRow } from './store/db.js';

// --- analyses -----------------------------------------------------------------------------------------
export { bisectRun, bisectTraces, type BisectReport, type BisectRun, NotComparable } from './app/bisect.js';
export { perturbTrace, minimizeTrace, whyBytes } from './app/analyze.js';
export { runCatalog, type CatalogResult } from './app/catalog.js';
export { explore, type ExploreRequest, type ExploreReport, type SignatureReport } from './app/explore.js';
export { merge as mergeDatabases, type MergeReport } from './app/merge.js';

// --- import and export --------------------------------------------------------------------------------
export { importTrace, type ImportOptions, type ImportResult, type ImportFormat } from './app/import.js';
export { exportTrace } from './app/export.js';
export { exportPerfetto, type TraceEvent } from './app/perfetto.js';
export { buildReport, type ReportData } from './app/report.js';
export { reportHtml } from './app/report-html.js';
export { recordArgs, recordCommandLine, traceName } from './app/sim-args.js';

// --- events and configuration -------------------------------------------------------------------------
export { KINDS, KIND_NAMES, ACTORS, SCHEMA_VERSION, type DmaEvent, type EventOf, type NewEvent, type Kind, type Actor, type Desc, type Seg } from './events/schema.js';
export { eventToJson, eventFromJson } from './events/json.js';
export { formatEvent, bdf, kindMatcher } from './events/format.js';
export { encodeOne as encodeEvent, decodeChunk, EventWriter, CodecError } from './events/binary.js';
export { type SimConfig, type Fault, type FaultKind, type WorkloadName, FAULT_KINDS, WORKLOADS, parseFault, parseVariant, validateConfig } from './sim/config.js';
export { PATHS, type PathName } from './model/types.js';
export { DmaReplayError, UsageError, InputError, EXIT } from './errors.js';

// --- the pipeline with every checker (the engine's fold/seek take the checkers as an argument, so the
// engine does not depend on src/check; the library hands it the full set)
import { fold as foldWith, type FoldOptions, type RecordedChunk } from './engine/replay.js';
import { seek as seekWith } from './engine/seek.js';
import type { Checkpoint } from './engine/snapshot.js';
import { JUDGE as ALL_CHECKS } from './check/index.js';
/** Applies events in order through the model and every checker (imported and in-memory traces). */
export const fold = (chunks: Iterable<RecordedChunk>, opts: FoldOptions = {}) => foldWith(chunks, ALL_CHECKS, opts);
/** The world at event `at`, from the nearest checkpoint at or before it. */
export const seek = (checkpoint: Checkpoint | null, chunks: Iterable<RecordedChunk>, at: number) => seekWith(checkpoint, chunks, at, ALL_CHECKS);
