// Define a custom error type for API errors
export class ApiError extends Error {
  constructor(message: string, public readonly details?: unknown) {
    super(message);
    this.name = 'ApiError';
  }
}

// Parser for the Result-style responses
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function parseResponse<T>(response: any): T {
  try {
    if ('Ok' in response && response.Ok !== undefined && response.Ok !== null) {
      return response.Ok as T;
    }

    if ('Err' in response && response.Err !== undefined) {
      throw new ApiError(`API returned an error`, response.Err);
    }
  } catch (e) {
    return response as T;
  }
  return response as T;
}

/**
 * Generic API request function
 * @param path - API endpoint path
 * @param method - HTTP method (GET, POST, PUT, DELETE, etc.)
 * @param data - Request data
 * @returns Promise with parsed response data
 * @throws ApiError if the request fails or response contains an error
 */
async function apiRequest<T, R>(path: string, method: string, data: T): Promise<R> {
  const BASE_URL = import.meta.env.BASE_URL || window.location.origin;

  const requestOptions: RequestInit = {
    method: method,
    headers: {
      "Content-Type": "application/json",
    },
  };

  // Only add body for methods that support it
  if (method !== 'GET' && method !== 'HEAD') {
    requestOptions.body = JSON.stringify(data);
  }

  const url = path.startsWith('/') ? `${BASE_URL}${path}` : `${BASE_URL}/${path}`;
  const result = await fetch(url, requestOptions);

  if (!result.ok) {
    throw new ApiError(`HTTP request failed with status: ${result.status}`);
  }

  const jsonResponse = await result.json();
  return parseResponse<R>(jsonResponse);
}


// ============= AllTypes Hyperapp =============
export namespace AllTypes {

  // Custom Types
  export type Value = unknown
  export type NodeId = string
  export type UserId = string

  export enum Level {
    Low = "Low",
    High = "High",
  }

  export interface Kitchen {
    s: Shape;
    shapes: Shape[];
    maybe: Shape | null;
    lv: Level;
    node: NodeId;
    user: UserId;
    any: Value;
    c: Char;
    big: string;
    small: string;
    names: [number, string][];
    by_i32: [number, Shape][];
    counts: [string, number][];
    nodes: [NodeId, number][];
    t16: [number, number, number, number, number, number, number, number, number, number, boolean, string, Char, Level, Shape, NodeId];
    events: Event[];
  }

  export interface Rect {
    w: number;
    h: number;
  }

  export type Event = { Shapes: Shape[] } | { Maybe: string | null } | { Node: NodeId } | { Pair: [number, string] } | { Quit: null };

  export type Shape = { Circle: number } | { Rect: Rect } | { None: null };


  // API Request/Response Types
  export interface EventsOfRequestWrapper {
    EventsOf: [Level, NodeId, Char, Value]
  }

  export type EventsOfResponse = Event[];


  // API Functions
  /**
   * events_of
   * @param lv: Level
   * @param node: NodeId
   * @param c: Char
   * @param extra: Value * @returns Promise with result
   * @throws ApiError if the request fails
   */
  export async function events_of(lv: Level, node: NodeId, c: Char, extra: Value): Promise<Event[]> {
    const data: EventsOfRequestWrapper = {
      EventsOf: [lv, node, c, extra],
    };

    return await apiRequest<EventsOfRequestWrapper, Event[]>('/api/events-of', 'POST', data);
  }

}

