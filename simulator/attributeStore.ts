/**
 * The notification attributes the server wrote on one device (LwM2M Write-Attributes: PUT with
 * `?pmin=..&pmax=..` on an object, instance or resource), and the effective pmin/pmax of a path:
 * resource level over instance over object over the server defaults (/1/0/2, /1/0/3).
 */
import { formatPath, Lwm2mPath } from './deviceResources';
import { EffectiveAttributes } from './observations';

/** Attributes as written; absent means inherited. Seconds. */
export interface WrittenAttributes {
  pmin?: number;
  pmax?: number;
}

/** The attributes this simulator honours; others (gt, lt, st, epmin, epmax) are refused with 4.00. */
const SUPPORTED_ATTRIBUTES = new Set<keyof WrittenAttributes>(['pmin', 'pmax']);

export type AttributeWrite = { ok: true } | { ok: false; reason: string };

export class AttributeStore {
  private readonly byPath = new Map<string, WrittenAttributes>();

  /**
   * Applies the Uri-Query parameters of a Write-Attributes: `pmin=10` sets, a bare `pmin` removes. All or
   * nothing: a bad parameter leaves the stored attributes as they were.
   */
  apply(path: Lwm2mPath, queries: readonly string[]): AttributeWrite {
    const pathKey = formatPath(path);
    const next: WrittenAttributes = { ...this.byPath.get(pathKey) };
    for (const query of queries) {
      const [name, value, ...rest] = query.split('=');
      if (!SUPPORTED_ATTRIBUTES.has(name as keyof WrittenAttributes)) {
        return { ok: false, reason: `attribute "${name}" is not supported (pmin and pmax are)` };
      }
      const key = name as keyof WrittenAttributes;
      if (value === undefined) {
        delete next[key];
        continue;
      }
      if (rest.length > 0 || !/^\d{1,9}$/.test(value)) {
        return {
          ok: false,
          reason: `${name} must be a whole number of seconds; got "${query.slice(name.length + 1)}"`,
        };
      }
      next[key] = Number(value);
    }
    if (next.pmin === undefined && next.pmax === undefined) this.byPath.delete(pathKey);
    else this.byPath.set(pathKey, next);
    return { ok: true };
  }

  /** The attributes written exactly at `path` (for Discover). */
  writtenAt(path: Lwm2mPath): WrittenAttributes | undefined {
    return this.byPath.get(formatPath(path));
  }

  /**
   * pmin/pmax in force for `path`. `overrides` (the fleet's demo settings) win over everything. A pmax of 0,
   * or below pmin, means no periodic notification (LwM2M 1.1 §5.1.2: such a pmax is ignored).
   */
  effective(
    path: Lwm2mPath,
    defaults: { pmin: number; pmax: number },
    overrides: { pmin?: number; pmax?: number },
  ): EffectiveAttributes {
    const levels: Lwm2mPath[] = [
      path,
      ...(path.resourceId !== undefined ? [{ objectId: path.objectId, instanceId: path.instanceId }] : []),
      ...(path.instanceId !== undefined ? [{ objectId: path.objectId }] : []),
    ];
    let pmin: number | undefined = overrides.pmin;
    let pmax: number | undefined = overrides.pmax;
    for (const level of levels) {
      const written = this.byPath.get(formatPath(level));
      pmin ??= written?.pmin;
      pmax ??= written?.pmax;
    }
    pmin ??= defaults.pmin;
    pmax ??= defaults.pmax;
    return pmax > 0 && pmax >= pmin ? { pminSeconds: pmin, pmaxSeconds: pmax } : { pminSeconds: pmin };
  }

  clear(): void {
    this.byPath.clear();
  }
}
