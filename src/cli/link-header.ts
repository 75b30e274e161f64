/**
 * The `marker` of a `Link: <…?marker=N…>; rel="next"` header (RFC 8288),
 * which scopekeeper sends on a full page of GET /v2/scope and
 * GET /v2/scope/events: the cursor of the next page. Undefined when there
 * is no such link (a last page, or CloudKitty, which sends no Link), or
 * when its marker is not a non-negative integer. Several links may share
 * one header, comma-separated, or come as several headers.
 */
export function nextMarkerOf (header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined
  const text = [header].flat().join(', ')
  for (const match of text.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
    const rels = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(match[2])
    const relation = rels?.[1] ?? rels?.[2]
    if (relation === undefined || !relation.toLowerCase().split(/\s+/).includes('next')) continue
    let marker: string | null
    try {
      marker = new URL(match[1], 'http://relative.invalid').searchParams.get('marker')
    } catch {
      continue
    }
    if (marker === null || !/^\d+$/.test(marker)) return undefined
    return Number(marker)
  }
  return undefined
}
