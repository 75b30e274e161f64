/** The answers /healthcheck can give, in oslo.middleware's order of preference. */
export const HEALTH_TYPES = ['text/plain', 'text/html', 'application/json'] as const
export type HealthType = typeof HEALTH_TYPES[number]
const OFFERS = HEALTH_TYPES.map((type) => type.split('/'))

// webob's Accept grammar (webob/acceptparse.py, class Accept), RFC 7231
// section 5.3.2, transcribed piece by piece so that a header webob calls
// invalid is invalid here too.
const OWS = '[ \\t]*'
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+"
const QVALUE = '(?:0(?:\\.[0-9]{0,3})?)|(?:1(?:\\.0{0,3})?)'
const WEIGHT = `${OWS};${OWS}[qQ]=(${QVALUE})`
const QDTEXT = '[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]'
const QUOTED_PAIR = '\\\\[\\t \\x21-\\x7e\\x80-\\xff]'
const QUOTED_STRING = `"(?:(?:${QDTEXT})|(?:${QUOTED_PAIR}))*"`
const PARAMETER = `${TOKEN}=(?:(?:${TOKEN})|(?:${QUOTED_STRING}))`
const MEDIA_RANGE = `((?:${TOKEN}/${TOKEN}))((?:${OWS};${OWS}(?![qQ]=)${PARAMETER})*)`
const ACCEPT_EXT = `${OWS};${OWS}${TOKEN}(?:=(?:(?:${TOKEN})|(?:${QUOTED_STRING})))?`
const ELEMENT = `${MEDIA_RANGE}(?:${WEIGHT}((?:${ACCEPT_EXT})*))?`
// webob's _list_0_or_more__compiled_re, anchored as its re.match is.
const VALID_ACCEPT = new RegExp(`^(?:(?:,|(?:${ELEMENT}))(?:${OWS},(?:${OWS}${ELEMENT})?)*)?$`)
const ELEMENTS = new RegExp(ELEMENT, 'g')

function negotiate (accept: string): HealthType {
  if (!VALID_ACCEPT.test(accept)) return HEALTH_TYPES[0]
  // Per offer: the qvalue of its most specific matching range (the first
  // of equally specific ones), as AcceptValidHeader.acceptable_offers.
  const quality = [0, 0, 0]
  const specificity = [0, 0, 0]
  for (const match of accept.matchAll(ELEMENTS)) {
    const range = match[1].toLowerCase()
    const hasParameters = match[2] !== ''
    const q = match[3] === undefined ? 1 : Number(match[3])
    const slash = range.indexOf('/')
    const type = range.slice(0, slash)
    const subtype = range.slice(slash + 1)
    for (let offer = 0; offer < OFFERS.length; offer++) {
      const [offerType, offerSubtype] = OFFERS[offer]
      let s: number
      if (type === offerType && subtype === offerSubtype) {
        // Our offers carry no parameters: a range with some matches none.
        if (hasParameters) continue
        s = 3
      } else if (subtype === '*' && type === offerType) {
        s = 2
      } else if (range === '*/*') {
        s = 1
      } else {
        continue
      }
      if (s <= specificity[offer]) continue
      specificity[offer] = s
      quality[offer] = q
    }
  }
  let best: HealthType | undefined
  let bestQuality = 0
  for (let offer = 0; offer < HEALTH_TYPES.length; offer++) {
    if (quality[offer] > bestQuality) { best = HEALTH_TYPES[offer]; bestQuality = quality[offer] }
  }
  return best ?? HEALTH_TYPES[0]
}

// Monitors send the same Accept header every time.
const remembered = new Map<string, HealthType>()
const MAX_REMEMBERED = 64

/**
 * The answer type of a GET /healthcheck with this `Accept` header, as
 * oslo.middleware's Healthcheck.process_request picks it: webob's
 * `acceptable_offers` over text/plain, text/html, application/json (higher
 * qvalue first, then that order), text/plain when none is acceptable, the
 * header is absent or it does not parse, "because sending an error from
 * this middleware actually can cause issues".
 */
export function healthType (accept: string | undefined): HealthType {
  if (accept === undefined) return HEALTH_TYPES[0]
  let type = remembered.get(accept)
  if (type === undefined) {
    type = negotiate(accept)
    if (remembered.size >= MAX_REMEMBERED) remembered.clear()
    remembered.set(accept, type)
  }
  return type
}
