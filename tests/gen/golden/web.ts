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


// ============= Web Hyperapp =============
export namespace Web {

  // Custom Types
  export enum Priority {
    Low = "Low",
    VeryHigh = "VeryHigh",
  }

  export interface Note {
    body: string;
    tags: number[];
    blob: number[];
    author: string;
    lines: string | null[];
    sums: [string, number][];
    pair: [number, string | null];
    type: Flags;
    score: number;
  }

  export interface Flags {
    urgent: boolean;
    level: Priority;
  }


  // API Request/Response Types
  export interface CountRequestWrapper {
    Count: [[number, string | null], string | null[]]
  }

  export type CountResponse = { Ok: number } | { Err: void };

  export interface GetNoteRequestWrapper {
    GetNote: number
  }

  export type GetNoteResponse = { Ok: Note } | { Err: string };

  export interface ListNotesRequestWrapper {
    ListNotes: null
  }

  export type ListNotesResponse = Note[];

  export interface PingRequestWrapper {
    Ping: null
  }

  export type PingResponse = Result;

  export interface UpdateNoteRequestWrapper {
    UpdateNote: [number, Note, Flags]
  }

  export type UpdateNoteResponse = { Ok: void } | { Err: string };


  // API Functions
  /**
   * count
   * @param t: [number, string | null]
   * @param m: string | null[] * @returns Promise with result
   * @throws ApiError if the request fails
   */
  export async function count(t: [number, string | null], m: string | null[]): Promise<number> {
    const data: CountRequestWrapper = {
      Count: [t, m],
    };

    return await apiRequest<CountRequestWrapper, number>('/api/count', 'POST', data);
  }

  /**
   * get_note
   * @param noteId: number * @returns Promise with result
   * @throws ApiError if the request fails
   */
  export async function get_note(noteId: number): Promise<Note> {
    const data: GetNoteRequestWrapper = {
      GetNote: noteId,
    };

    return await apiRequest<GetNoteRequestWrapper, Note>('/api/get-note', 'POST', data);
  }

  /**
   * list_notes
   * @returns Promise with result
   * @throws ApiError if the request fails
   */
  export async function list_notes(): Promise<Note[]> {
    const data: ListNotesRequestWrapper = {
      ListNotes: null,
    };

    return await apiRequest<ListNotesRequestWrapper, Note[]>('/notes', 'GET', data);
  }

  /**
   * ping
   * @returns Promise with result
   * @throws ApiError if the request fails
   */
  export async function ping(): Promise<Result> {
    const data: PingRequestWrapper = {
      Ping: null,
    };

    return await apiRequest<PingRequestWrapper, Result>('/api/ping', 'POST', data);
  }

  /**
   * update_note
   * @param noteId: number
   * @param body: Note
   * @param type: Flags * @returns Promise with result
   * @throws ApiError if the request fails
   */
  export async function update_note(noteId: number, body: Note, type: Flags): Promise<void> {
    const data: UpdateNoteRequestWrapper = {
      UpdateNote: [noteId, body, type],
    };

    return await apiRequest<UpdateNoteRequestWrapper, void>('/api/update-note', 'PUT', data);
  }

}

